"""What a runs listing shows: each run's score by the board's rule, and names kept whole."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import event, insert

from tuigen.reports.run_score import RunScore, run_scores
from tuigen.store import tables

PROV = {"n": 32, "reference": "dataset:mnist/size16", "extractor": "inception-tf"}


def _completed(store, kind, name="", **kw):
    return store.create_run(kind, {}, name=name, dataset="mnist", status="completed", **kw).id


def test_run_scores_follow_the_boards_rule(store):
    ddpm = _completed(store, "ddpm")
    store.add_score(ddpm, "fid", 30.0, PROV, step=100)
    store.add_score(ddpm, "fid", 55.0, PROV, step=300)  # newest checkpoint wins, though worse
    store.add_score(ddpm, "fid", 50.0, {**PROV, "n": 64}, step=300)  # and its newest evaluation
    store.log_metrics(ddpm, [("fid", 400, 1.0, 0.0)])  # a logged value never beats a stored score
    cond = _completed(store, "cond-ddpm")
    store.add_score(cond, "fid", 40.0, PROV, step=300)
    store.add_score(cond, "accuracy", 0.8, {"n": 200}, step=300)  # the kind declares accuracy first
    clf = _completed(store, "classifier")
    store.log_metrics(clf, [("val_acc", 50, 0.7, 0.0), ("val_acc", 100, 0.9, 0.0)])  # no stored score
    dann = _completed(store, "dann")
    store.log_metrics(dann, [("source_acc", 2, 0.99, 0.0), ("target_acc", 2, 0.6, 0.0)])
    bare = _completed(store, "ddpm")
    store.log_metrics(bare, [("loss", 10, 0.1, 0.0)])

    got = run_scores(store, [ddpm, cond, clf, dann, bare])
    assert got == {ddpm: ("fid", 50.0), cond: ("accuracy", 0.8), clf: ("val_acc", 0.9), dann: ("target_acc", 0.6)}
    assert [got[i].label for i in (ddpm, clf, dann)] == ["FID", "accuracy", "target accuracy"]
    metric, value = got[ddpm]  # it unpacks as the pair it is
    assert isinstance(got[ddpm], RunScore) and (metric, value) == ("fid", 50.0)


def test_run_scores_of_a_thousand_runs_is_one_query(store):
    ids = list(range(1, 1001))
    with store.engine.begin() as c:  # rows only: making 1,000 run folders would take seconds
        c.execute(insert(tables.Run.__table__), [dict(id=i, uuid=str(i), kind="ddpm", status="completed",
                                                      created_at=0.0, run_dir="", step=0) for i in ids])
        c.execute(insert(tables.Score.__table__), [dict(run_id=i, metric="fid", value=float(i), step=100,
                                                        provenance_key="k", created_at=0.0) for i in ids[::2]])
    statements = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    got = run_scores(store, ids)
    assert len([s for s in statements if s.startswith("SELECT")]) == 1, statements  # BEGIN is no query
    assert len(got) == 500 and got[ids[0]] == ("fid", float(ids[0]))


def _tuigen(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    """The real `tuigen` command, its output piped (as in `tuigen ls | cat`)."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "tuigen", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=True)


def test_ls_lists_stored_scores_in_the_table_and_in_json(store):
    # the issue: after `tuigen fid 1 -n 32` the score column stayed empty
    run = _completed(store, "ddpm", name="demo-ddpm-1")
    store.add_score(run, "fid", 42.5, PROV, step=300)
    out = _tuigen("ls", columns=120).stdout
    assert "FID 42.5" in out.splitlines()[1], out
    listed = json.loads(_tuigen("ls", "--json").stdout)
    assert listed[0]["score"] == {"metric": "fid", "label": "FID", "value": 42.5}


def _crowded(store) -> list[str]:
    """Runs whose every column is as wide as it gets: 24-character names, long datasets, scores."""
    names = ["demo-exec-10", "x" * 24, "cats-ddpm-lr1e-4-ch128-b"]
    for i, name in enumerate(names):
        run = store.create_run("cond-ddpm", {}, name=name, dataset="folder:/data/cats-64", status="completed",
                               total_steps=100_000)
        store.update_run(run.id, step=100_000, device="cuda:0", started_at=0.0, ended_at=7200.0 * i)
        store.log_metrics(run.id, [("loss", 100_000, 0.012345, 0.0)])
        store.add_score(run.id, "accuracy", 0.987654, {"n": 200}, step=100_000)
    return names


def test_ls_at_80_columns_keeps_names_whole(store):
    # the issue: `tuigen ls | cat` at 80 columns showed `demo-e…` for `demo-exec-10`
    names = _crowded(store)
    lines = _tuigen("ls", columns=80).stdout.splitlines()
    assert len(lines) == 1 + len(names)  # one line a run: nothing wrapped
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    for line, name in zip(lines[1:], reversed(names)):
        assert f" {name} " in line and "…" not in line, line
        assert "accuracy 0.9877" in line  # the score stays; less useful columns went
    assert lines[0].split()[:2] == ["id", "name"] and "device" not in lines[0]


def test_ls_in_a_narrow_pipe_shortens_but_keeps_id_and_status(store):
    _crowded(store)
    lines = _tuigen("ls", columns=44).stdout.splitlines()
    assert all(len(line.rstrip()) <= 44 for line in lines), lines
    assert lines[0].split() == ["id", "name", "status", "score"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"] and all("completed" in x for x in lines[1:])


def _scored_store(store):
    """Runs with summaries, stored and logged scores, and a study's trial."""
    study = store.create_study("s", "ddpm", "fid", "minimize", {}, "").id
    for i in range(5):
        run = store.create_run("ddpm" if i % 2 else "classifier", {}, name=f"r{i}", dataset="digits",
                               status="completed", study_id=study if i == 3 else None, trial_number=0 if i == 3 else None)
        store.log_metrics(run.id, [("loss", 10, 0.5 / (i + 1), 0.0), ("val_acc", 10, 0.1 * i, 0.0)])
        if i % 2:
            store.add_score(run.id, "fid", 30.0 + i, PROV, step=10)
    return store


def test_the_first_frame_reads_what_the_store_reads(store):
    from tuigen.store.first_paint import open_first_paint
    from tuigen.tui.data import FIRST_PAINT, _rows

    _scored_store(store)
    reader = open_first_paint(store.url)
    light = _rows(reader, reader.run_rows(limit=FIRST_PAINT))
    full = _rows(store, store.run_rows(limit=FIRST_PAINT, newest_first=True))
    assert light == full and len(full) == 5
    assert {r.score_label for r in full} == {"FID", "accuracy"} and any(r.group for r in full)
    assert open_first_paint("postgresql://u@h/db") is None and open_first_paint(store.url + "-missing") is None


def test_the_first_frame_needs_no_sqlalchemy(store):
    _scored_store(store)
    code = f"""
import sys
from tuigen.tui.app import TuigenApp
from tuigen.tui.data import RunsPoller
app = TuigenApp({store.url!r})
def never():
    raise AssertionError("the first poll opened the store")
snap = RunsPoller(never, app.first_paint).poll()
assert len(snap.rows) == 5 and snap.partial, snap
assert "sqlalchemy" not in sys.modules, "the first frame imported SQLAlchemy"
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr


def _tuigen_at_a_terminal(*args: str) -> subprocess.CompletedProcess:
    """`tuigen ARGS` with a terminal on stdin and stdout (so it opens the TUI), stderr captured."""
    import pty

    leader, follower = pty.openpty()
    try:
        return subprocess.run([sys.executable, "-m", "tuigen", *args], stdin=follower, stdout=follower,
                              stderr=subprocess.PIPE, text=True, timeout=60, env={**os.environ, "TERM": "xterm"})
    finally:
        os.close(leader)
        os.close(follower)


def test_the_tui_reports_a_store_it_cannot_open_as_any_command_does(tmp_path):
    # the TUI opens the store after its first frame; a store that cannot open still ends it with one line
    bad = tmp_path / "bad.db"
    bad.write_bytes(os.urandom(8192))
    res = _tuigen_at_a_terminal("--db", str(bad))  # stderr also carries the screen Textual drew and took down
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 1 and res.stderr.count("tuigen: error:") == 1, res.stderr[-500:]
    assert last.endswith(f"tuigen: error: the store {bad} is damaged or not a tuigen store (file is not a database)")
    res = _tuigen_at_a_terminal("--db", ":memory:")
    assert res.returncode == 2 and "tuigen: error: --db: an in-memory SQLite store cannot work" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]  # nothing was created

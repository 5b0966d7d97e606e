"""Runs that cannot be mixed up, hijacked or lost (issue 11): run identity, attempts, shared
stores, and a script launched by tuigen recording into the run that launched it."""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import wait_status
from tuigen.store import HOST, Store

ECHO = [sys.executable, "-c", "print('step=1 loss=0.5')"]


def _run(cli, *args) -> dict:
    args = list(args)
    at = args.index("--") if "--" in args else len(args)
    code, out, err = cli(*args[:at], "--json", *args[at:])
    assert code == 0, err
    return json.loads(out)


def test_two_stores_in_one_folder_never_share_run_folders(cli, tmp_path):
    """Found: both stores' run 1 wrote runs/1/output.log, and `rm` in one deleted the other's files."""
    a = _run(cli, "--db", "a.db", "exec", "--", *ECHO)
    b = _run(cli, "--db", "b.db", "exec", "--", *ECHO)
    assert a["id"] == b["id"] == 1 and a["run_dir"] != b["run_dir"]
    for db, run in (("a.db", a), ("b.db", b)):
        wait_status(Store(db), run["id"], "completed")
    code, _, err = cli("--db", "a.db", "rm", "-y", "1")
    assert code == 0, err
    assert not Path(a["run_dir"]).exists()
    assert (Path(b["run_dir"]) / "output.log").read_text().count("loss=0.5") == 1  # b's files untouched
    marker = json.loads((Path(b["run_dir"]) / ".tuigen-run.json").read_text())
    assert marker == {"store": Store("b.db").store_id, "run": 1, "uuid": b["uuid"]}
    assert Store("a.db").store_id != Store("b.db").store_id


def test_a_recreated_store_does_not_adopt_an_old_checkpoint(cli, tmp_path):
    """Found: after `rm runs.db*`, a new run 1 'resumed from checkpoint at step 200' of the old one."""
    args = ("run", "classifier", "--dataset", "digits", "--width", "4", "--train_num_steps", "6",
            "--eval_every", "6", "--checkpoint_every", "3")
    first = _run(cli, *args)
    wait_status(Store(), first["id"], "completed")
    for f in Path().glob("runs.db*"):
        f.unlink()
    second = _run(cli, *args, "--width", "8")  # a different width would not even load the old one
    run = wait_status(Store(), second["id"], ["completed", "failed"])
    assert run.status == "completed", run.error
    assert run.run_dir != first["run_dir"]
    events = [e.message for e in Store().events(run.id)]
    assert not any("resumed from checkpoint" in m for m in events), events


def test_a_folder_that_was_already_there_is_neither_adopted_nor_deleted(cli, tmp_path):
    """Found: a user's X/runs/1/precious was written into by run 1 and deleted by `rm -y 1`."""
    mine = tmp_path / "X" / "runs" / "1"
    mine.mkdir(parents=True)
    (mine / "precious").write_text("k")
    run = _run(cli, "--db", "X/runs.db", "exec", "--", *ECHO)
    assert Path(run["run_dir"]) != mine
    wait_status(Store("X/runs.db"), run["id"], "completed")
    store = Store("X/runs.db")
    store.update_run(run["id"], run_dir=str(mine))  # even pointed at it, tuigen will not touch it
    code, out, err = cli("--db", "X/runs.db", "logs", str(run["id"]))
    assert code == 1 and "no tuigen marker" in err and str(mine) in err
    code, out, err = cli("--db", "X/runs.db", "rm", "-y", str(run["id"]))
    assert code == 0 and f"kept {mine}" in err
    assert (mine / "precious").read_text() == "k"


def test_ids_are_never_reused_and_rm_never_follows_a_link(cli, store, tmp_path):
    """Found: after rm the next run got id 1 again; a run folder replaced by a symlink stayed
    behind after rm, and the next run wrote through it."""
    first = store.create_run("exec", {})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    folder = Path(first.run_dir)
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.symlink_to(elsewhere)
    code, out, err = cli("rm", "-y", str(first.id))
    assert code == 0, err
    assert not folder.exists() and not folder.is_symlink() and (elsewhere / "keep").exists()
    second = store.create_run("exec", {})
    assert second.id == first.id + 1 and Path(second.run_dir) != folder


def test_old_stores_are_migrated_with_ids_never_reused_and_folders_marked(tmp_path):
    """An Alembic migration brings a store from before run identity along: every run gets a
    UUID, its folder a marker, and SQLite's runs table AUTOINCREMENT (metrics stay)."""
    from alembic import command

    from tuigen.store.engine import make_engine
    from tuigen.store.migrate import alembic_config

    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0004_metrics_one_index")
    folder = tmp_path / "runs" / "1"
    folder.mkdir(parents=True)
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO runs (id, name, kind, project, dataset, status, config, tags, created_at, host, "
                  "executor, device, step, run_dir, resources) VALUES (1, 'old', 'exec', '', '', 'completed', '{}', "
                  f"'', 0, '', 'local', '', 3, '{folder}', '{{}}')")
        c.execute("INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (1, 'loss', 3, 0.5, 0)")
    store = Store(f"sqlite:///{db}")
    old = store.get_run(1)
    assert len(old.uuid) == 36 and store.folder_problem(old) is None
    assert [p.value for p in store.metrics(1)] == [0.5]  # the table rebuild cascaded nothing
    second = store.create_run("exec", {})
    store.delete_run(second.id)
    assert (second.id, store.create_run("exec", {}).id) == (2, 3)  # 2 was used once: never again
    with sqlite3.connect(db) as c:
        assert "AUTOINCREMENT" in c.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]


def test_a_stale_worker_cannot_overwrite_a_newer_attempt(store):
    """Found: an old worker's last transition could overwrite a newer attempt's status."""
    run = store.create_run("exec", {}, status="queued")
    first = store.start_attempt(run.id, ["queued"])
    store.transition(run.id, "crashed", when=["running"])
    store.transition(run.id, "queued", when=["crashed"])
    second = store.start_attempt(run.id, ["queued"])
    assert (first, second) == (1, 2)
    assert not store.transition(run.id, "completed", when=["running"], attempt=first)  # the stale one
    with pytest.raises(Exception, match="no longer on attempt 1"):
        store.log_metrics(run.id, [("loss", 1, 0.5, 0.0)], attempt=first)
    with pytest.raises(Exception, match="no longer on attempt 1"):
        store.heartbeat(run.id, attempt=first)
    assert store.get_run(run.id).status == "running" and store.metrics(run.id) == []
    assert store.transition(run.id, "completed", when=["running"], attempt=second)


def test_resuming_an_unknown_run_needs_force(cli, store):
    """Found: `resume` of an unknown run could start a second worker while the first was alive."""
    run = store.create_run("classifier", {}, status="unknown")
    store.update_run(run.id, host="gpu-7", pid=4242)
    code, _, err = cli("resume", str(run.id))
    assert code == 2 and "may still be alive" in err and "pid 4242 on gpu-7" in err and "--force" in err
    assert store.get_run(run.id).status == "unknown"


def test_a_shared_store_never_runs_another_users_work(cli, store):
    """Found: every tuigen command claimed any queued run, so one user's command ran another's."""
    theirs = store.create_run("exec", {"command": "touch ran-as-me"}, name="theirs")
    store.update_run(theirs.id, launched_by="someone-else")
    elsewhere = store.create_run("exec", {"command": "touch ran-here"}, name="elsewhere")
    store.update_run(elsewhere.id, launched_on="another-host")
    code, out, err = cli("ls")
    assert code == 0, err
    assert store.claim_queued(HOST, 4) == []
    assert {store.get_run(i).status for i in (theirs.id, elsewhere.id)} == {"queued"}
    assert not Path("ran-as-me").exists() and not Path("ran-here").exists()
    mine = _run(cli, "exec", "--", *ECHO)
    assert wait_status(store, mine["id"], "completed").launched_by == store.get_run(mine["id"]).launched_by
    assert store.get_run(theirs.id).status == "queued"


SCRIPT = """
import tuigen
run = tuigen.init(project="p", config={"lr": 0.1})
for i in range(1, 4):
    run.log({"loss": 1.0 / i}, step=i)
    print(f"step={i} loss={1.0 / i}", flush=True)  # also on stdout: must not be recorded twice
run.finish()
"""


def test_a_script_launched_by_tuigen_records_into_its_run(cli, store, tmp_path):
    """Found: `tuigen exec -- python train.py` with tuigen.init inside recorded two runs."""
    Path("train.py").write_text(SCRIPT)
    run = _run(cli, "exec", "--", sys.executable, "train.py")
    done = wait_status(store, run["id"], ["completed", "failed"])
    assert done.status == "completed", done.error
    assert [r.id for r in store.list_runs()] == [run["id"]]  # one piece of work, one run
    assert [(p.step, p.value) for p in store.metrics(run["id"], "loss")] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert json.loads(done.config)["script_config"] == {"lr": 0.1} and done.project == "p"


def test_worker_argv_holds_no_store_url(store):
    from tuigen.runner.launcher import worker_command

    argv = worker_command(7)
    assert all("sqlite" not in a and "postgres" not in a for a in argv)
    assert os.environ["TUIGEN_DB"] not in " ".join(argv)

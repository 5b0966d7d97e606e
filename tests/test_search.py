"""From a grid of knobs to the report table: `tuigen sweep`, `tuigen tune` (real Optuna) and
`tuigen report`, on tiny real runs: ddpm at 8x8 with a periodic FID for the sweep and its report,
`exec` trials (a script whose third start is bad) for the study, so the pruning is certain."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import pytest

from conftest import wait_for, wait_status
from test_faults import read_until, reap, spawn_in_pty, tuigen_cmd
from test_fid_cli import make_folder
from tuigen import config as schema
from tuigen.experiments import get_kind


@pytest.fixture(autouse=True)
def _no_leftover_driver(tmp_path):
    """A failing test must not leave a study driver asking for trials in the background."""
    yield
    from tuigen.runner.study import driver_alive
    from tuigen.store import Store

    if (tmp_path / "runs.db").exists():
        s = Store(f"sqlite:///{tmp_path / 'runs.db'}")
        for study in s.list_studies():
            if study.driver_pid and driver_alive(study):  # (one still running: the test failed)
                os.kill(study.driver_pid, signal.SIGKILL)
        s.close()


def md_table(text: str, first_header: str = "run") -> tuple[list[str], list[list[str]]]:
    """The first Markdown table whose header starts with `first_header`: (header, rows)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return [c.strip() for c in lines[start].strip("|").split("|")], rows


# -- sweep -> board -> report: the tuning table falls out ------------------------------------------
TINY = ["--image_size", "8", "--dim_mults", "1,2", "--attn_resolutions", "", "--num_res_blocks", "1",
        "--timesteps", "20", "--batch_size", "8", "--train_num_steps", "4", "--sample_every", "4",
        "--num_samples", "4", "--sample_steps", "2", "--checkpoint_every", "4", "--fid_every", "4", "--fid_n", "8",
        "--fid_method", "eigh"]  # the same formula as pytorch-fid, 7x faster on a CPU


def test_a_2x2_sweep_gives_the_tuning_table_in_its_report(cli, store, tmp_path):
    data = make_folder(tmp_path / "imgs")
    code, out, err = cli("sweep", "ddpm", "--dataset", f"folder:{data}", "--lr", "1e-3|5e-4", "--channels", "8|16",
                         *TINY, "--json")
    assert code == 0, err
    made = json.loads(out)
    sweep_id, ids = made["sweep_id"], made["runs"]
    assert len(ids) == 4 and sweep_id is not None
    for run_id in ids:
        run = wait_status(store, run_id, ["completed", "failed"], timeout=300)
        assert run.status == "completed", run.error
    configs = {i: json.loads(store.get_run(i).config) for i in ids}
    assert sorted((c["lr"], c["channels"]) for c in configs.values()) == [(5e-4, 8), (5e-4, 16), (1e-3, 8), (1e-3, 16)]

    code, out, _ = cli("ls", "--sweep", str(sweep_id), "--json")
    assert code == 0 and sorted(r["id"] for r in json.loads(out)) == sorted(ids)
    code, out, _ = cli("board", "--sweep", str(sweep_id), "--json")
    board = json.loads(out)
    assert code == 0 and sorted(r["run_id"] for r in board["rows"]) == sorted(ids)
    assert board["columns"] == ["lr", "channels"]

    folder = tmp_path / "report"
    code, out, err = cli("report", "--sweep", str(sweep_id), "-o", folder)
    assert code == 0, err
    md = (folder / "report.md").read_text()
    header, rows = md_table(md)
    assert {"lr", "channels", "fid"} <= set(header)
    assert sorted(int(r[0]) for r in rows) == sorted(ids)  # one row per run
    fids = {s.run_id: s.value for s in store.scores(metric="fid")}
    for row in rows:
        cell = dict(zip(header, row))
        cfg = configs[int(cell["run"])]
        assert float(cell["lr"]) == cfg["lr"] and int(cell["channels"]) == cfg["channels"]
        assert float(cell["fid"].split()[0]) == pytest.approx(fids[int(cell["run"])], rel=1e-3)
        assert "[A, step 4]" in cell["fid"]  # the provenance footnote and the step it was evaluated at
    assert "[A] fid with provenance" in md and "n=8" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert any("samples" in link for link in links) and any("curve-loss" in link for link in links)
    for link in links:
        assert (folder / link).is_file(), link  # the folder stands alone
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(links) and 'src="images/' not in html

    # each run's command makes the same config again
    commands = md.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    from tuigen.cli.main import build_parser

    for run_id, line in zip(sorted(ids), commands):
        ns = build_parser().parse_args(shlex.split(line)[1:])
        again = schema.build(get_kind("ddpm").config, schema.values_from_args(ns))
        assert json.loads(schema.to_json(again)) == configs[run_id], line


def test_a_bad_value_queues_nothing_and_names_the_knob(cli, store):
    code, _, err = cli("sweep", "ddpm", "--lr", "1e-3|-1", "--channels", "8|16")
    assert code == 2 and "--lr must be > 0, got -1" in err
    code, _, err = cli("sweep", "ddpm", "--image_size", "8|10", "--dim_mults", "1,2|1,2,4")  # 10 / 2^2: no
    assert code == 2 and "--image_size 10 does not divide" in err
    assert store.list_runs() == []


def test_random_draws_and_list_values_keep_their_commas(cli, store):
    from tuigen.runner.sweeps import combinations, grid_of

    _, grid = grid_of(get_kind("ddpm").config, {"dim_mults": "1,2,4|1,2,4,8", "lr": "1e-3|5e-4|1e-4"})
    assert grid["dim_mults"] == ["1,2,4", "1,2,4,8"]
    draws = combinations(grid, random=3, seed=7)
    assert len({json.dumps(d) for d in draws}) == 3 and draws == combinations(grid, random=3, seed=7)
    code, out, err = cli("sweep", "exec", "--command", "true|echo a=1|echo a=2|echo a=3", "--random", "2",
                         "--random-seed", "7", "--json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    picked = combinations({"command": ["true", "echo a=1", "echo a=2", "echo a=3"]}, random=2, seed=7)
    assert [json.loads(store.get_run(i).config)["command"] for i in runs] == [p["command"] for p in picked]


def test_kill_sweep_stops_the_queued_runs_before_they_start(cli, store):
    code, out, err = cli("sweep", "exec", "--command", "sleep 30|sleep 31|sleep 32", "--max-parallel", "1", "--json")
    assert code == 0, err
    made = json.loads(out)
    first = wait_status(store, made["runs"][0], "running", timeout=60)
    code, out, err = cli("kill", "--sweep", str(made["sweep_id"]), "--wait", "30")
    assert code == 0, err
    runs = [store.get_run(i) for i in made["runs"]]
    assert [r.status for r in runs] == ["killed"] * 3
    assert all(r.started_at is None for r in runs[1:]), "a queued run of the sweep started while it was killed"
    assert first.id == runs[0].id


# -- tune: real Optuna, three trials, one pruned ----------------------------------------------------
TRIAL = """import os, sys, time
n = 0  # this script's nth start (exclusive-create files count them): the third reports a bad fid
while True:
    try:
        os.close(os.open(os.path.join(sys.argv[1], f"start-{n}"), os.O_CREAT | os.O_EXCL))
        break
    except FileExistsError:
        n += 1
bad = n == 2
for step in range(1, 121 if bad else 4):
    print(f"step={step} fid={50.0 if bad else 10.0 - n - step / 10}", flush=True)
    time.sleep(0.5 if bad else 0.05)
"""


def test_a_study_prunes_a_trial_outlives_its_terminal_and_resumes(cli, store, tmp_path):
    import optuna

    from tuigen.runner.study import optuna_storage

    script, counter = tmp_path / "trial.py", tmp_path / "counter"
    script.write_text(TRIAL)
    counter.mkdir()
    cmd = f"{sys.executable} {script} {counter}"
    pid, master = spawn_in_pty(tuigen_cmd("tune", "exec", "--trials", "3", "--metric", "fid", "--command",
                                          f"{cmd} a|{cmd} b", "--prune-startup", "2", "--name", "s1"))
    try:
        read_until(master, b"study s1 started")
        driver = store.get_study("s1").driver_pid
        assert os.getsid(driver) == driver  # its own session: no SIGHUP reaches it from this terminal
    finally:
        os.close(master)  # the terminal goes away
    assert reap(pid)
    study = wait_for(lambda: (s := store.get_study("s1")).status != "running" and s, timeout=120, what="the study")
    assert study.status == "done", study.error
    runs = store.list_runs(study_id=study.id, newest_first=False)
    assert [(r.trial_number, r.status) for r in runs] == [(0, "completed"), (1, "completed"), (2, "pruned")]
    pruned = runs[2]
    assert pruned.error.startswith("pruned by the median pruner at step") and "worse than the median" in pruned.error
    assert "SIGTERM received" in (Path(pruned.run_dir) / "output.log").read_text()  # the normal stop path
    assert len(store.metrics(pruned.id, "fid")) < 60  # stopped long before its 120 steps

    ostudy = optuna.load_study(study_name="s1", storage=optuna_storage(store.url))
    assert [t.state.name for t in ostudy.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert ostudy.trials[2].intermediate_values and ostudy.trials[0].user_attrs["tuigen_run_id"] == runs[0].id
    code, out, _ = cli("board", "--study", "s1", "--json")
    board = json.loads(out)
    assert code == 0 and board["best"]["run_id"] == runs[ostudy.best_trial.number].id
    assert board["best"]["value"] == pytest.approx(ostudy.best_value)
    assert [r["state"] for r in board["rows"]] == ["complete", "complete", "pruned"]

    code, out, err = cli("tune", "--resume", "s1", "--trials", "4")
    assert code == 0, err
    study = wait_for(lambda: (s := store.get_study("s1")).status != "running" and s, timeout=60, what="the resume")
    assert study.status == "done" and len(store.list_runs(study_id=study.id)) == 4
    assert store.list_runs(study_id=study.id)[0].status == "completed"

    code, out, err = cli("report", "--study", "s1", "-o", tmp_path / "rep")
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "pruned by the median pruner" in md and md.count("tuigen run exec --command") == 4
    header, rows = md_table(md)
    assert header[4:6] == ["trial", "objective fid (step)"] and [r[3] for r in rows].count("pruned") == 1


# -- the TUI: the sweep column, the report keys, a study's best so far -----------------------------
async def test_tui_shows_sweeps_and_studies_and_writes_reports(store, tmp_path):
    from test_tui import make_runs, table_ids, wait_until
    from tuigen.tui.app import TuigenApp

    ids = make_runs(store)
    sweep = store.create_sweep("lr-sweep", "ddpm", {"grid": {"lr": ["1e-3", "5e-4"]}})
    store.update_run(ids["small"], sweep_id=sweep)
    study = store.create_study("s", "ddpm", "fid", "minimize", {"space": {"lr": {"type": "float"}}, "trials": 3}, "x")
    for number, name in enumerate(("mid", "big")):
        store.update_run(ids[name], study_id=study.id, trial_number=number)
    store.update_study(study.id, status="done")
    app = TuigenApp(store)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        table = app.screen.query_one("#runs")
        assert str(table.get_cell(str(ids["small"]), "sweep")) == str(sweep)
        assert str(table.get_cell(str(ids["big"]), "sweep")) == "s #1"
        table.move_cursor(row=table_ids(app).index(ids["big"]))  # newest first: small is below it
        await pilot.press("space", "down", "space", "R")  # a multi-selection's report
        runs_md = await _report_appears(pilot, tmp_path, "report-runs-*")
        _, rows = md_table(runs_md)
        assert sorted(int(r[0]) for r in rows) == sorted(app.screen.selected) == sorted([ids["big"], ids["small"]])

        await pilot.press("b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen"
                         and app.screen.query_one("#board").row_count == 3)
        await pilot.press("R")  # the board's report: the ranked runs
        board_md = await _report_appears(pilot, tmp_path, "report-board-fid-*")
        _, rows = md_table(board_md)
        assert sorted(int(r[0]) for r in rows) == sorted([ids["small"], ids["big"], ids["mid"]])

        await pilot.press("escape", "t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "StudiesScreen"
                         and app.screen.query_one("#studies").row_count == 1)
        row = app.screen.query_one("#studies").get_row("s")
        assert str(row[4]) == "25.7" and str(row[5]) == str(ids["big"])  # the best so far: the lower FID
        await pilot.press("R")
        study_md = await _report_appears(pilot, tmp_path, "report-study-s-*")
        assert "best so far: trial 1" in study_md


async def _report_appears(pilot, folder: Path, pattern: str) -> str:
    from test_tui import wait_until

    await wait_until(pilot, lambda: any((p / "report.html").exists() for p in folder.glob(pattern)), timeout=30)
    return next(folder.glob(pattern)).joinpath("report.md").read_text()


def test_a_study_on_postgresql_keeps_optuna_in_its_own_schema(pg_server, cli, request, monkeypatch):
    """A lab's shared store: Optuna's RDBStorage in the schema `optuna` of the same database (its
    tables, alembic_version among them, apart from tuigen's)."""
    import optuna
    from sqlalchemy import inspect

    from conftest import _fresh_pg_database
    from tuigen.runner.study import optuna_storage
    from tuigen.store import Store

    url = _fresh_pg_database(pg_server, "t_study_pg")
    monkeypatch.setenv("TUIGEN_DB", url)
    request.node.tuigen_db = url
    store = Store(url)
    try:
        code, out, err = cli("tune", "exec", "--trials", "2", "--metric", "loss", "--direction", "minimize",
                             "--command", "echo step=1 loss=2|echo step=1 loss=1", "--sampler", "random",
                             "--name", "pg", "--json")
        assert code == 0, err
        study = wait_for(lambda: (s := store.get_study("pg")).status != "running" and s, timeout=60, what="the study")
        assert study.status == "done", study.error
        ostudy = optuna.load_study(study_name="pg", storage=optuna_storage(url))
        assert [t.state.name for t in ostudy.trials] == ["COMPLETE", "COMPLETE"]
        assert ostudy.best_value in (1.0, 2.0) and "schema optuna" in study.storage
        tables = inspect(store.engine)
        assert "trials" in tables.get_table_names(schema="optuna") and "trials" not in tables.get_table_names()
    finally:
        store.close()

"""Tiny real runs through the real worker: the run lifecycle end to end."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import torch

from conftest import python, wait_for, wait_status

FAST = ["--dataset", "digits", "--width", "8", "--batch_size", "32"]


def start(cli, *args) -> int:
    code, out, err = cli("run", "classifier", *FAST, *args, "--json")
    assert code == 0, err
    return json.loads(out)["id"]


def test_a_run_completes_with_metrics_checkpoints_and_samples(cli, backend_store):
    store = backend_store
    run_id = start(cli, "--train_num_steps", "40", "--eval_every", "20", "--checkpoint_every", "20")
    run = wait_status(store, run_id, "completed")
    assert (run.step, run.total_steps, run.error) == (40, 40, None)
    assert run.pid and run.proc_start and run.heartbeat_at and run.device == "cpu"
    summary = store.summary(run_id)
    assert summary["loss"].count == 40 and summary["val_acc"].count == 2
    assert [p.step for p in store.metrics(run_id, "loss")] == list(range(1, 41))
    ckpts = sorted(Path(run.run_dir, "checkpoints").glob("ckpt-*.pt"))
    assert [p.name for p in ckpts] == ["ckpt-0000020.pt", "ckpt-0000040.pt"]
    state = torch.load(ckpts[-1], weights_only=True)  # loadable without unpickling code
    assert state["step"] == 40 and "model" in state and "optimizer" in state
    assert [a.step for a in store.artifacts(run_id, kind="checkpoint")] == [20, 40]
    assert any(s.rss_bytes for s in store.system_samples(run_id))
    assert "run 1 (classifier) started" in Path(run.run_dir, "output.log").read_text()


def test_follow_shows_progress_until_the_end(cli, store):
    code, out, _ = cli("run", "classifier", *FAST, "--train_num_steps", "20", "--follow")
    assert code == 0
    assert "20/20" in out and "completed" in out


def test_kill_9_of_a_worker_is_shown_as_crashed(cli, store):
    run_id = start(cli, "--train_num_steps", "100000")
    run = wait_for(lambda: (r := store.get_run(run_id)).step > 0 and r, what="training to start")
    os.kill(run.pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{run.pid}").exists() or
             "zombie" in Path(f"/proc/{run.pid}/status").read_text().lower(), what="the worker to die")
    code, _, _ = cli("ls")  # any tuigen command reconciles
    run = store.get_run(run_id)
    assert code == 0 and run.status == "crashed"
    assert f"process {run.pid} is gone" in run.error and "started" in run.error  # with the log tail
    assert any("crashed" in e.message for e in store.events(run_id))


def test_a_reused_pid_is_not_taken_for_the_worker(store):
    from tuigen.runner.process import start_time
    from tuigen.runner.reaper import reconcile
    from tuigen.store import HOST

    mine = store.create_run("classifier", {})
    other = store.create_run("classifier", {})
    for run, started in ((mine, start_time()), (other, start_time() - 1000)):  # same pid, other start
        store.update_run(run.id, status="running", pid=os.getpid(), proc_start=started, host=HOST)
    assert reconcile(store) == [other.id]
    assert store.get_run(mine.id).status == "running"


def test_sigterm_checkpoints_and_resume_continues_the_same_curve(cli, backend_store):
    store = backend_store
    args = ["--train_num_steps", "300", "--checkpoint_every", "1000", "--eval_every", "50", "--seed", "3",
            "--width", "32", "--batch_size", "64"]  # slow enough to stop midway
    reference = start(cli, *args)
    stopped = start(cli, *args)
    run = wait_for(lambda: (r := store.get_run(stopped)).step >= 10 and r, what="training to start")
    os.kill(run.pid, signal.SIGTERM)
    run = wait_status(store, stopped, "killed")
    assert 10 <= run.step < 300, "stopped mid-run"
    ckpt = store.artifacts(stopped, kind="checkpoint")
    assert [a.step for a in ckpt] == [run.step]  # saved on the way out

    code, _, err = cli("resume", str(stopped))
    assert code == 0, err
    wait_status(store, stopped, "completed")
    wait_status(store, reference, "completed")
    ref = {p.step: p.value for p in store.metrics(reference, "loss")}
    got = store.metrics(stopped, "loss")
    assert [p.step for p in got] == list(range(1, 301))  # no gap, no duplicate
    for p in got:
        assert p.value == pytest.approx(ref[p.step], rel=1e-5, abs=1e-6), f"step {p.step}"
    assert any("resumed from checkpoint" in e.message for e in store.events(stopped))


def test_resume_refuses_runs_that_cannot_resume(cli, store):
    run_id = start(cli, "--train_num_steps", "5")
    wait_status(store, run_id, "completed")
    code, _, err = cli("resume", str(run_id))
    assert code == 2 and "completed" in err


def test_queued_runs_start_when_a_slot_frees_without_a_terminal(cli, store, monkeypatch):
    monkeypatch.setenv("TUIGEN_SLOTS", "1")
    first = start(cli, "--train_num_steps", "30")
    second = start(cli, "--train_num_steps", "30")
    assert store.get_run(second).status == "queued"
    a = wait_status(store, first, "completed")
    b = wait_status(store, second, "completed")  # started by the first worker as it exited
    assert b.started_at >= a.ended_at - 0.5


def test_kill_removes_a_queued_run(cli, store, monkeypatch):
    monkeypatch.setenv("TUIGEN_SLOTS", "1")
    first = start(cli, "--train_num_steps", "100000")
    second = start(cli, "--train_num_steps", "10")
    code, out, _ = cli("kill", str(second), str(first), "--wait", "30")
    assert code == 0 and "removed from the queue" in out
    assert store.get_run(second).status == "killed"
    assert store.get_run(first).status == "killed"


def test_clone_keeps_the_config_but_what_is_changed(cli, store):
    src = start(cli, "--train_num_steps", "5", "--lr", "0.01")
    code, out, err = cli("clone", str(src), "--lr", "1e-4", "--json")
    assert code == 0, err
    new = json.loads(out)
    assert new["parent_id"] == src
    old_cfg = json.loads(store.get_run(src).config)
    assert new["config"] == {**old_cfg, "lr": 1e-4}
    code, _, err = cli("clone", str(src), "--lr", "0")
    assert code == 2 and "--lr must be > 0" in err


def test_exec_records_a_command_and_its_printed_metrics(cli, store):
    script = "import sys\nfor i in range(1, 6): print(f'step={i} loss={1 / i:.3f} acc: 0.{i}')"
    code, out, err = cli("exec", "--json", "--", "python", "-c", script)
    assert code == 0, err
    run_id = json.loads(out)["id"]
    wait_status(store, run_id, "completed")
    assert [(p.step, p.value) for p in store.metrics(run_id, "loss")] == [(i, round(1 / i, 3)) for i in range(1, 6)]
    assert store.summary(run_id)["acc"].max == 0.5
    code, out, _ = cli("exec", "--json", "--", "python", "-c", "import sys; sys.exit(3)")
    failed = wait_status(store, json.loads(out)["id"], "failed")
    assert "exited with code 3" in failed.error


def test_exec_output_parsing():
    from tuigen.experiments.exec_command import parse_metrics

    assert parse_metrics("epoch 3 | step=120 loss=0.25 lr: 1e-4 acc=97%") == ({"loss": 0.25, "lr": 1e-4, "acc": 97.0}, 120)
    assert parse_metrics("version=1.2.3 url=http://x:80") == ({}, None)
    assert parse_metrics("iter: 7, d_loss=nan") [1] == 7


def test_many_writers_at_once_lose_no_metric(backend_store, tmp_path):
    store = backend_store
    script = """
import tuigen, sys
run = tuigen.init(project="stress", name=sys.argv[1])
for i in range(3000):
    run.log({"loss": i * 0.5, "acc": 1.0}, step=i)
run.finish()
"""
    Path("w.py").write_text(script)
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "w.py", f"w{i}"]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    runs = store.list_runs(project="stress")
    assert len(runs) == 4 and {r.status for r in runs} == {"completed"}
    for r in runs:
        assert len(store.metrics(r.id, "loss")) == 3000
        assert store.summary(r.id)["loss"].count == 3000
    if store.engine.dialect.name == "sqlite":
        db = sqlite3.connect(tmp_path / "runs.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_script_that_raises_is_failed_and_one_killed_is_crashed(store):
    res = python("import tuigen\nrun = tuigen.init(project='p')\nrun.log({'loss': 1.0})\nraise ValueError('boom')")
    assert res.returncode == 1
    res = python("import os, signal, tuigen\nrun = tuigen.init(project='p')\nrun.log({'loss': 2.0})\n"
                 "run._rec.flush()\nos.kill(os.getpid(), signal.SIGKILL)")
    assert res.returncode == -9
    from tuigen.runner.reaper import reconcile

    reconcile(store)
    failed, crashed = sorted(store.list_runs(project="p"), key=lambda r: r.id)
    assert failed.status == "failed" and "ValueError: boom" in failed.error
    assert crashed.status == "crashed"
    assert store.summary(failed.id)["loss"].last == 1.0 and store.summary(crashed.id)["loss"].last == 2.0


def test_log_image_writes_a_png_artifact(store):
    import numpy as np

    import tuigen

    run = tuigen.init(project="img")
    batch = np.random.default_rng(0).uniform(-1, 1, size=(4, 8, 8, 3))
    path = Path(run.log_image("samples", batch, step=5))
    run.finish()
    from PIL import Image

    assert path.exists() and Image.open(path).size == (22, 22)  # 2x2 grid of 8px with 2px padding
    assert [(a.key, a.step) for a in store.artifacts(run.id, kind="image")] == [("samples", 5)]


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr must be > 0, got -1"),
    (["--dataset", "mnsit"], "unknown dataset 'mnsit'"),
    (["--dataset", "folder:/no/such/folder"], "/no/such/folder"),
    (["--batch_size", "many"], "--batch_size expects an integer, got 'many'"),
])
def test_bad_flags_exit_2_naming_the_flag_and_store_nothing(cli, store, args, message):
    code, out, err = cli("run", "classifier", *args)
    assert code == 2 and message in err and err.count("\n") == 1
    assert store.list_runs() == []


def test_unknown_flag_and_unknown_run(cli):
    code, _, err = cli("run", "classifier", "--lrr", "1")
    assert code == 2 and "--lrr" in err
    code, _, err = cli("show", "999")
    assert code == 2 and "no run with id 999" in err


def test_a_folder_without_readable_images_fails_with_a_clear_error(cli, store, tmp_path):
    bad = tmp_path / "imgs" / "cats"
    bad.mkdir(parents=True)
    (bad / "broken.png").write_bytes(b"not a png")
    code, out, err = cli("run", "classifier", "--dataset", f"folder:{bad.parent}", "--json")
    if code == 2:  # rejected up front: equally clear
        assert "imgs" in err
        return
    run = wait_status(store, json.loads(out)["id"], "failed")
    assert "imgs" in run.error.strip().splitlines()[-1]


def test_listing_showing_exporting_and_removing(cli, store, tmp_path):
    a = start(cli, "--train_num_steps", "10", "--tag", "keep")
    b = start(cli, "--train_num_steps", "10")
    wait_status(store, a, "completed"), wait_status(store, b, "completed")
    code, out, _ = cli("ls", "--tag", "keep", "--json")
    listed = json.loads(out)
    assert [r["id"] for r in listed] == [a] and listed[0]["metrics"]["loss"]["count"] == 10
    code, out, _ = cli("show", str(a))
    assert code == 0 and "val_acc" in out and "lr" in out and "checkpoint" in out
    assert "SmallCNN" in out and "MaxPool2d" in out, out  # the architecture summary
    code, _, _ = cli("export", str(a), "--format", "csv", "-o", "m.csv")
    lines = Path("m.csv").read_text().splitlines()
    assert lines[0] == "run_id,key,step,value,wall_time" and len(lines) == 1 + len(store.metrics(a))
    code, out, _ = cli("export", str(a), "--format", "json")
    assert len(json.loads(out)["points"]) == len(store.metrics(a))
    run_dir = Path(store.get_run(b).run_dir)
    code, out, _ = cli("rm", str(b), "--yes")
    assert code == 0 and not run_dir.exists() and [r.id for r in store.list_runs()] == [a]


def test_demo_queues_its_plan_then_the_figures_run(cli, store):
    from tuigen.runner.demo import FIGURES, PLAN

    code, out, _ = cli("demo", "--json")
    ids = json.loads(out)
    runs = [store.get_run(i) for i in ids]
    assert code == 0 and [r.name for r in runs] == [p.name for p in PLAN] + [FIGURES.name]
    assert [r.kind for r in runs[:-1]] == [p.kind for p in PLAN] and all("demo" in r.tags.split(",") for r in runs)
    assert json.loads(runs[-1].config)["command"].endswith("demo --figures " + ",".join(map(str, ids[:-1])))
    assert wait_for(lambda: any(store.get_run(i).step > 0 for i in ids), what="live work")
    cli("kill", *map(str, ids), "--force")


def test_demo_if_empty_starts_nothing_when_runs_exist(cli, store):
    store.create_run("classifier", {}, status="completed")
    code, out, _ = cli("demo", "--if-empty", "--json")
    assert code == 0 and out == "" and len(store.list_runs()) == 1


def test_recorded_values_nan_and_non_numbers(store):
    import numpy as np

    import tuigen

    run = tuigen.init(project="values")
    run.log({"loss": float("nan")}, step=1)
    run.log({"loss": 1.0, "acc": np.float32(0.5)}, step=2)
    run.log({"loss": torch.tensor(0.25)}, step=3)
    with pytest.raises(TypeError, match="metric 'acc' must be a number, got str"):
        run.log({"acc": "high"}, step=4)
    run.finish()
    rid = store.list_runs(project="values")[0].id
    assert [(p.key, p.step, p.value) for p in store.metrics(rid)] == [("loss", 2, 1.0), ("acc", 2, 0.5), ("loss", 3, 0.25)]
    warnings = [e.message for e in store.events(rid) if e.level == "warning"]
    assert warnings == ["metric 'loss' was NaN (first at step 1); NaN points are not stored"]


def test_a_run_failing_on_the_users_input_stores_one_line(cli, store, tmp_path):
    """A failure caused by what the user asked for is a one-line error on the run; the traceback
    goes to the log only (issue 11). Here: cond-ddpm on a folder without class subfolders."""
    from PIL import Image

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(flat / f"{i}.png")
    code, out, err = cli("run", "cond-ddpm", "--dataset", f"folder:{flat}", "--image_size", "8", "--dim_mults", "1",
                         "--channels", "8", "--train_num_steps", "2", "--json")
    assert code == 0, err
    run = wait_status(store, json.loads(out)["id"], ["failed", "completed"])
    assert run.status == "failed"
    assert run.error == f"--dataset folder:{flat} has no labels; cond-ddpm needs class or multi-hot labels"
    assert "Traceback" in Path(run.run_dir, "output.log").read_text()

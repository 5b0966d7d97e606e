"""Data-parallel runs: two gloo ranks on the CPU under torchrun, started by the real worker.

resources {"processes": 2} is the CPU stand-in for {"gpus": 2}: the same code path with the
gloo backend instead of NCCL."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from conftest import wait_for, wait_status

from tuigen.runner import ddp
from tuigen.runner.control import launch, resume, stop

TWO = {"processes": 2}
TINY_DDPM = {"dataset": "digits", "image_size": 8, "channels": 8, "dim_mults": "1,2", "num_res_blocks": 1,
             "attn_resolutions": "4", "timesteps": 50, "batch_size": 16, "lr": 1e-3, "log_every": 1,
             "sample_steps": 5, "num_samples": 4, "train_num_steps": 12, "sample_every": 6, "checkpoint_every": 6,
             "grad_steps": 2}  # two micro-batches: the first under no_sync, so only the second all-reduces
ENDED = ("completed", "failed", "killed", "crashed")


def finished(store, run_id, status, timeout=120):
    run = wait_status(store, run_id, ENDED, timeout=timeout)
    log = (Path(run.run_dir) / "output.log").read_text()
    assert run.status == status, f"{run.status}: {run.error}\n{log[-3000:]}"
    return run


def rank_results(run) -> list[dict]:
    return [json.loads((Path(run.run_dir) / "ddp" / f"rank-{r}.json").read_text()) for r in range(2)]


def test_ddpm_on_two_processes_records_once_and_ends_with_the_same_weights_on_both(store):
    import torch

    from tuigen import config
    from tuigen.experiments import get_kind
    from tuigen.trained.diffusion import restore
    from tuigen.trained.checkpoint import load
    from tuigen.runner.ddp_context import state_digest

    run = finished(store, launch(store, "ddpm", TINY_DDPM, resources=TWO), "completed")
    assert [p.step for p in store.metrics(run.id, "loss")] == list(range(1, 13))  # one series: rank 1 wrote none
    assert [a.step for a in store.artifacts(run.id, kind="image", key="samples")] == [6, 12]
    events = [e.message for e in store.events(run.id)]
    assert "data-parallel: 2 processes (gloo) under torchrun" in events
    assert "all 2 ranks ended with identical weights" in events
    results = rank_results(run)
    assert [r["step"] for r in results] == [12, 12] and results[0]["params"] == results[1]["params"]
    path = Path(run.run_dir) / "checkpoints" / "ckpt-0000012.pt"
    trained = restore(config.from_json(get_kind("ddpm").config, run.config), load(path), weights="raw")
    assert state_digest(trained.model.parameters()) == results[0]["params"]  # the hash is of the trained weights
    final = load(path)
    assert len(final["rng_ranks"]) == 2  # each rank's RNG, to resume its own noise stream
    assert not torch.equal(final["rng_ranks"][0]["torch"], final["rng_ranks"][1]["torch"])


def test_stop_checkpoints_at_a_step_all_ranks_agree_on_and_resume_continues_it(store):
    cfg = {"dataset": "digits", "batch_size": 32, "train_num_steps": 100000, "eval_every": 100000,
           "checkpoint_every": 100000}
    run_id = launch(store, "classifier", cfg, resources=TWO)
    wait_for(lambda: store.get_run(run_id).step >= 3, timeout=90, what="the first steps")
    stop(store, run_id)  # SIGTERM to the worker's group (worker, torchrun); ranks hear of it through ddp/stop
    first = finished(store, run_id, "killed")
    k = first.step
    assert [a.step for a in store.artifacts(run_id, kind="checkpoint")] == [k]
    assert all(r["step"] == k and r["stopped"] for r in rank_results(first))

    resume(store, run_id)
    wait_for(lambda: store.get_run(run_id).step >= k + 3, timeout=90, what="steps after the resume")
    os.kill(store.get_run(run_id).pid, signal.SIGTERM)  # the worker alone (as with Slurm's early signal)
    second = finished(store, run_id, "killed")
    assert second.step > k
    assert [p.step for p in store.metrics(run_id, "loss")] == list(range(1, second.step + 1))  # no gap, no repeat
    assert f"resumed from checkpoint at step {k}" in [e.message for e in store.events(run_id)]
    results = rank_results(second)
    assert [r["step"] for r in results] == [second.step] * 2 and results[0]["params"] == results[1]["params"]
    assert "all 2 ranks ended with identical weights" in [e.message for e in store.events(run_id)]


def test_the_cli_flag_asks_for_cpu_ranks(cli, store):
    code, out, err = cli("run", "classifier", "--dataset", "digits", "--width", "8", "--batch_size", "16",
                         "--train_num_steps", "6", "--processes", "2", "--json")
    assert code == 0, err
    run = finished(store, json.loads(out)["id"], "completed")
    assert json.loads(run.resources) == {"processes": 2}
    assert [r["rank"] for r in rank_results(run)] == [0, 1]
    assert any("2 processes (gloo)" in e.message for e in store.events(run.id))


def test_a_forced_kill_leaves_no_rank_behind(store):
    import psutil

    def alive(p: psutil.Process) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    run_id = launch(store, "classifier", {"dataset": "digits", "train_num_steps": 100000}, resources=TWO)
    wait_for(lambda: store.get_run(run_id).step >= 2, timeout=90, what="the first steps")
    ours = [p for p in psutil.process_iter(["cmdline"])
            if "tuigen.runner.ddp" in (p.info["cmdline"] or []) and str(run_id) in (p.info["cmdline"] or [])]
    assert len(ours) == 3  # torchrun and two ranks, each rank in a session of its own
    try:
        stop(store, run_id, force=True)  # SIGKILL to the worker's process group: the ranks are not in it
        assert store.get_run(run_id).status == "killed"
        wait_for(lambda: not any(alive(p) for p in ours), timeout=15, what="the ranks to die with the worker")
    finally:
        for p in filter(alive, ours):  # no stray trainers if it failed
            p.kill()


def test_a_kind_that_cannot_train_data_parallel_fails_with_a_clear_error(store, cli):
    import pytest

    from tuigen.runner.control import ControlError
    from tuigen.runner.scheduler import schedule

    with pytest.raises(ControlError, match="kind 'dcgan' trains on one process"):
        launch(store, "dcgan", {"dataset": "digits", "image_size": 8}, resources=TWO)
    assert store.list_runs() == []  # refused before anything was recorded
    # a run recorded with such resources anyway (another tool, an older tuigen) fails in its worker
    store.create_run("dcgan", json.dumps({"dataset": "digits", "image_size": 8}), resources=TWO)
    schedule(store)
    run = finished(store, store.list_runs()[0].id, "failed")
    assert "kind 'dcgan' does not train on several processes" in run.error
    assert "ddpm, cond-ddpm, classifier" in run.error


def test_more_gpus_than_the_worker_sees_is_refused_before_starting_ranks(store, monkeypatch):
    import pytest

    run = store.create_run("ddpm", "{}", resources={"gpus": 2})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ddp.DataParallelError, match=r"ask for 2 GPUs, but this worker sees 1 .*\"processes\""):
        ddp._checked_plan(store.get_run(run.id))
    both = store.create_run("ddpm", "{}", resources={"gpus": 2, "processes": 2})
    with pytest.raises(ddp.DataParallelError, match="not both"):
        ddp.plan(store.get_run(both.id))
    assert not ddp.requested(store.get_run(store.create_run("ddpm", "{}", resources={"gpus": 1}).id))


def _mean_on_rank(rank: int, init: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    from tuigen.runner.ddp_context import mean_over_ranks

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        got = mean_over_ranks(torch.tensor(float(rank + 1) * 3), torch.device("cpu"))  # ranks hold 3 and 6
        Path(out, f"rank-{rank}").write_text(repr(float(got)))
    finally:
        dist.destroy_process_group()


def test_logged_numbers_are_the_mean_over_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_mean_on_rank, args=(f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=2, join=True)
    assert [float((tmp_path / f"rank-{r}").read_text()) for r in range(2)] == [4.5, 4.5]

"""Data-parallel training: one run on several processes under torchrun (DDP).

A run asks for it in its resources (runs.resources, JSON):
    {"gpus": N}       N > 1: N ranks, one GPU each, NCCL (the GPUs this worker sees)
    {"processes": N}  N > 1: N ranks on the CPU, gloo (for machines without GPUs, and tests)

The worker stays the owner of the run's state. Instead of training itself it runs

    python -m tuigen.runner.ddp RUN_ID --torchrun N
      = torchrun --standalone --nproc-per-node N -m tuigen.runner.ddp RUN_ID

(the store URL reaches every rank through TUIGEN_DB in the environment, never argv)

and waits (`supervise`). Each rank trains the kind with a DistributedContext (ddp_context.py):
rank 0 records, the others record nothing. torchrun starts each rank in a session of its own,
out of reach of signals to the run's process group: a stop reaches them as the file ddp/stop,
written by the worker when it is signalled (torchrun ignores SIGTERM and waits), and a forced
kill through the kernel (each process dies with its parent). The ranks agree before each step,
so all stop at the same step and rank 0 checkpoints. Each rank leaves ddp/rank-<r>.json (last
step, error, weight hash), from which the worker records completed / killed / failed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import config as config_schema
from ..experiments import data_parallel_kinds, get_kind
from ..files import write_text
from ..store import Store
from .process import tree

BACKEND_ENV = "TUIGEN_DDP_BACKEND"  # set by the worker for its ranks: nccl | gloo
PARENT_ENV = "TUIGEN_DDP_PARENT"  # the pid a launched process must not outlive
POLL_S = 0.2


class DataParallelError(RuntimeError):
    """A data-parallel run that cannot start, or a rank that failed (its traceback inside)."""


# -- what the run asks for ------------------------------------------------------------------
def resources(run) -> dict:
    """The run's resources JSON as a dict ({} when none were asked for)."""
    try:
        value = json.loads(run.resources or "{}")
    except json.JSONDecodeError as e:
        raise DataParallelError(f"run {run.id}: resources is not valid JSON ({e}): {run.resources!r}") from None
    if not isinstance(value, dict):
        raise DataParallelError(f"run {run.id}: resources must be a JSON object, got {run.resources!r}")
    return value


@dataclass(frozen=True)
class Plan:
    processes: int
    backend: str  # "nccl" (a GPU per rank) | "gloo" (CPU)


def plan(run) -> Plan:
    res = resources(run)
    gpus, procs = _count(res, "gpus"), _count(res, "processes")
    if gpus > 1 and procs > 1:
        raise DataParallelError(f"run {run.id}: resources ask for both gpus ({gpus}) and processes ({procs}); "
                                "give gpus for GPU ranks or processes for CPU ranks, not both")
    if procs > 1:
        return Plan(procs, "gloo")
    return Plan(max(gpus, 1), "nccl")


def _count(res: dict, key: str) -> int:
    value = res.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataParallelError(f"resources {key} must be a whole number >= 0, got {value!r}")
    return value


def requested(run) -> bool:
    """Whether the worker should hand this run to torchrun (more than one process)."""
    try:
        return plan(run).processes > 1
    except DataParallelError:
        return True  # supervise() records the bad resources as the run's error


# -- the worker's side ----------------------------------------------------------------------
def supervise(cfg, ctx) -> None:
    """Train the run on torchrun's ranks; called by the worker in place of the kind's train.

    Leaves ctx.step / ctx.total at rank 0's, so the worker tells completed from killed."""
    run = ctx.store.get_run(ctx.run_id)
    p = _checked_plan(run)
    folder = _fresh_folder(ctx.run_dir / "ddp")
    ctx.event(f"data-parallel: {p.processes} processes ({p.backend}) under torchrun")
    proc = subprocess.Popen(_launch_command(run.id, p.processes), env=_rank_env(p, ctx.store.url, ctx.attempt),
                            stdin=subprocess.DEVNULL)  # in our group: a forced kill takes torchrun, then the ranks
    try:
        _wait(proc, ctx, folder / "stop")
    finally:
        if proc.poll() is None:  # a second signal (stop now) or an error here: no rank outlives the worker
            _kill_tree(proc.pid)
            proc.wait()
    _conclude(ctx, _results(folder, p.processes), proc.returncode)


def _checked_plan(run) -> Plan:
    p = plan(run)
    if not get_kind(run.kind).data_parallel:
        raise DataParallelError(f"kind '{run.kind}' does not train on several processes; ask for one GPU "
                                f"(--gpus 1) or use one of: {data_parallel_kinds()}")
    if p.backend == "nccl":
        seen = _visible_gpus()
        if seen < p.processes:
            raise DataParallelError(
                f"resources ask for {p.processes} GPUs, but this worker sees {seen} "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); the local executor "
                'gives a run one GPU. Use {"processes": N} for CPU ranks.')
    return p


def _visible_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    from .monitor import gpu_count

    return gpu_count()


def _fresh_folder(folder: Path) -> Path:
    """ddp/ without the results and stop request of an earlier attempt."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in [*folder.glob("rank-*.json"), folder / "stop"]:
        f.unlink(missing_ok=True)
    return folder


def _launch_command(run_id: int, n: int) -> list[str]:
    return [sys.executable, "-m", "tuigen.runner.ddp", str(run_id), "--torchrun", str(n)]


def _torchrun_args(run_id: int, n: int) -> list[str]:
    return ["--standalone", "--nproc-per-node", str(n), "-m", "tuigen.runner.ddp", str(run_id)]


def _rank_env(p: Plan, db_url: str, attempt: int | None) -> dict:
    from .context import threads_for_worker

    threads = str(max(1, threads_for_worker() // p.processes))  # the run's CPU share, split over its ranks
    return dict(os.environ, **{BACKEND_ENV: p.backend, PARENT_ENV: str(os.getpid()), "OMP_NUM_THREADS": threads,
                               "TUIGEN_THREADS": threads, "PYTHONUNBUFFERED": "1", "TUIGEN_DB": db_url,
                               "TUIGEN_RUN_ATTEMPT": str(attempt or "")})


def _wait(proc: subprocess.Popen, ctx, stop_file: Path) -> None:
    while proc.poll() is None:
        if ctx.should_stop and not stop_file.exists():
            stop_file.touch()  # the ranks see it before their next step
        try:
            proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            pass


def _kill_tree(pid: int) -> None:
    for p in reversed(tree(pid)):
        try:
            p.kill()
        except Exception:
            pass


def _results(folder: Path, n: int) -> list[dict | None]:
    out = []
    for r in range(n):
        try:
            out.append(json.loads((folder / f"rank-{r}.json").read_text()))
        except (OSError, json.JSONDecodeError):
            out.append(None)  # killed before it could write one
    return out


def _conclude(ctx, results: list[dict | None], returncode: int) -> None:
    lead = results[0] or {}
    ctx.step, ctx.total = lead.get("step") or ctx.step, lead.get("total")
    if lead.get("stopped"):
        ctx.request_stop()  # the ranks stopped early (e.g. only they were signalled): killed, not completed
    missing = [r for r, res in enumerate(results) if res is None]
    died = f"rank {', '.join(map(str, missing))} died without a result (torchrun exit code {returncode}); " \
        if missing else ""  # e.g. killed for memory
    errors = sorted((r for r in results if r and r.get("error")), key=lambda r: r["time"])
    if errors:  # the first to fail is the cause; the others mostly report the broken connection
        raise DataParallelError(f"{died}rank {errors[0]['rank']} failed:\n{errors[0]['error']}")
    if (missing or returncode != 0) and not ctx.should_stop:  # a signalled torchrun exits 1 after a clean stop
        raise DataParallelError(f"{died or f'torchrun exited with code {returncode}; '}see output.log")
    if not missing:
        _compare_weights(ctx, results)


def _compare_weights(ctx, results: list[dict]) -> None:
    digests = {r["params"] for r in results}
    if len(digests) > 1:
        ctx.event(f"the {len(results)} ranks ended with different weights; data-parallel sync is broken", "warning")
    elif digests != {None}:
        ctx.event(f"all {len(results)} ranks ended with identical weights")


# -- torchrun and its ranks ------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuigen.runner.ddp",
                                description="one rank of a data-parallel run, or with --torchrun N all of them")
    p.add_argument("run_id", type=int)
    p.add_argument("--torchrun", type=int, metavar="N", help="start N ranks under torchrun (what the worker runs)")
    args = p.parse_args(argv)
    if args.torchrun:
        return _torchrun(args.run_id, args.torchrun)
    return _rank(args.run_id)


def _torchrun(run_id: int, n: int) -> int:
    """torchrun, deaf to SIGTERM: on a stop (a SIGTERM to the run's process group) it waits for
    the ranks' checkpoint instead of killing them after its 30 s grace."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"  # torchrun's default list, less SIGTERM
    os.environ[PARENT_ENV] = str(os.getpid())  # for the ranks
    from torch.distributed.run import main as torchrun

    torchrun(_torchrun_args(run_id, n))
    return 0


def _die_with_parent() -> None:
    """Be killed with the process that started us (Linux), so a forced kill of the worker
    (SIGKILL, the OOM killer) leaves no torchrun or rank training on."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if str(os.getppid()) != os.environ.get(PARENT_ENV, str(os.getppid())):
        os._exit(1)  # the parent died before the kernel could be told


def _rank(run_id: int) -> int:
    _die_with_parent()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # a repeat is the same stop
        signal.signal(sig, lambda *_: stop.set())
    rank = int(os.environ["RANK"])
    store = Store(os.environ["TUIGEN_DB"])
    run = store.get_run(run_id)
    folder = Path(run.run_dir) / "ddp"
    result = {"rank": rank, "step": None, "total": None, "stopped": False, "params": None, "error": None}
    try:
        ctx = _train(store, run, stop, folder / "stop")
        result.update(step=ctx.step, total=ctx.total, stopped=ctx.should_stop, params=ctx.param_digest())
    except BaseException as e:  # noqa: BLE001 - reported to the worker through the result file
        result["error"] = "".join(traceback.format_exception(e))
        print(f"rank {rank}:\n{result['error']}", file=sys.stderr, flush=True)
    finally:
        _write_result(folder / f"rank-{rank}.json", {**result, "time": time.time()})
        store.close()
    return 1 if result["error"] else 0


def _train(store: Store, run, stop: threading.Event, stop_file: Path):
    import torch
    import torch.distributed as dist

    from .context import threads_for_worker
    from .ddp_context import DistributedContext, FollowerContext

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    backend = os.environ.get(BACKEND_ENV, "gloo")
    torch.set_num_threads(threads_for_worker())
    if backend == "nccl":
        torch.cuda.set_device(local)
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    from ..trained.device import tune_for

    tune_for(device)
    kind = get_kind(run.kind)
    cfg = config_schema.from_json(kind.config, run.config)
    from datetime import timedelta

    from ..settings import ddp_timeout_s

    timeout = ddp_timeout_s()  # None: torch's default (NCCL 10 minutes, gloo 30)
    # env:// rendezvous that torchrun set up
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout) if timeout else None)
    try:
        cls = DistributedContext if rank == 0 else FollowerContext
        attempt = int(os.environ.get("TUIGEN_RUN_ATTEMPT") or 0) or None  # the worker's: rank 0 writes for it
        ctx = cls(store, run.id, run.run_dir, cfg, device=device, stop=stop, stop_file=stop_file,
                  rank=rank, world_size=world, attempt=attempt)
        ctx.start()
        from ..settings import count_syncs

        if count_syncs():
            ctx.count_syncs()
        try:
            kind.load()(cfg, ctx)
        finally:
            ctx.close()
        return ctx
    finally:
        dist.destroy_process_group()


def _write_result(path: Path, result: dict) -> None:
    write_text(path, json.dumps(result))  # atomically: the worker never reads half a file


if __name__ == "__main__":
    sys.exit(main())

"""The worker: one process per run, the only writer of that run's state.

    python -m tuigen.runner.worker RUN_ID --db URL

starting -> running -> completed | failed (traceback stored) | killed (SIGTERM/SIGINT: the
kind saves a checkpoint and returns). On exit it schedules the next queued run.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback

from .. import config as config_schema
from ..experiments import get_kind
from ..store import COMPLETED, CRASHED, FAILED, HOST, KILLED, QUEUED, RUNNING, STARTING, UNKNOWN, Store, StoreError
from . import ddp
from .process import start_time
from .slurm import requeue_self, restarted_by_slurm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuigen.runner.worker")
    p.add_argument("run_id", type=int)
    p.add_argument("--db", required=True)
    args = p.parse_args(argv)
    _install_stop_handlers()  # before anything slow: a kill during start-up is still a clean stop
    store = Store(args.db)
    try:
        return execute(store, args.run_id)
    finally:
        _schedule_next(store)
        store.close()


def execute(store: Store, run_id: int) -> int:
    run = store.get_run(run_id)
    startable = [STARTING, QUEUED] + ([KILLED, CRASHED, UNKNOWN] if restarted_by_slurm(run) else [])
    if not store.transition(run_id, RUNNING, when=startable, pid=os.getpid(),
                            proc_start=start_time(), host=HOST, started_at=time.time(),
                            heartbeat_at=time.time(), ended_at=None, error=None):
        print(f"run {run_id} is {store.get_run(run_id).status}; nothing to do", flush=True)
        return 0
    print(f"tuigen worker pid {os.getpid()}: run {run_id} ({run.kind}) started", flush=True)
    ctx = None
    status, error = COMPLETED, None
    try:
        kind = get_kind(run.kind)
        cfg = config_schema.from_json(kind.config, run.config)
        parallel = ddp.requested(run)  # several processes: torchrun's ranks train, rank 0 records
        ctx = _make_context(store, run, cfg, kind.uses_torch and not parallel)
        ctx.start()
        if not STOP.is_set():
            (ddp.supervise if parallel else kind.load())(cfg, ctx)
        if STOP.is_set() and (ctx.total is None or ctx.step < ctx.total):
            status = KILLED  # stopped early; a stop that arrives after the last step changes nothing
    except KeyboardInterrupt:  # a second signal while stopping
        status, error = KILLED, "stopped before a checkpoint could be saved"
    except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised below
        status, error = FAILED, "".join(traceback.format_exception(e))
        print(error, file=sys.stderr, flush=True)
    finally:
        if ctx is not None:
            try:
                ctx.close()
            except Exception as e:
                status, error = FAILED, (error or "") + f"\ncould not write the last metrics: {e}"
    if status == KILLED and PREEMPTED.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the requeue ends this attempt; all is saved
        status, error = requeue_self(store, run_id)  # Slurm starts the job again; it resumes
    try:
        if status != QUEUED:  # requeued: recorded queued already, and its next attempt may be running
            store.transition(run_id, status, when=[RUNNING, UNKNOWN], ended_at=time.time(), error=error)
    except StoreError as e:  # e.g. its disk is full: say so in output.log, whose tail the reaper records
        print(f"tuigen worker: run {run_id} {status}, but the store could not record it: {e}", flush=True)
        return 1
    print(f"tuigen worker: run {run_id} {status}", flush=True)
    return 0 if status in (COMPLETED, KILLED, QUEUED) else 1


def _make_context(store: Store, run, cfg, uses_torch: bool):
    from .context import Context, TorchContext, threads_for_worker

    # the physical GPU(s) the scheduler gave it ("cuda:2" or "cuda:0,1"): NVML samples the first
    gpu_hint = int(run.device[5:].split(",")[0]) if run.device.startswith("cuda:") else None
    if not uses_torch:
        return Context(store, run.id, run.run_dir, cfg, gpu_hint=gpu_hint, stop=STOP)
    import torch  # in the worker only: the CLI and TUI never pay for it

    torch.set_num_threads(threads_for_worker())
    ctx = TorchContext(store, run.id, run.run_dir, cfg, gpu_hint=gpu_hint, stop=STOP)
    if not run.device.startswith("cuda:"):  # keep the scheduler's claim: it counts busy GPUs by it
        store.update_run(run.id, device=str(ctx.device))
    return ctx


STOP = threading.Event()  # shared with the run's context as its stop flag
PREEMPTED = threading.Event()  # SIGUSR1: Slurm's early warning; checkpoint, then requeue


def _install_stop_handlers() -> None:
    """First SIGTERM/SIGINT: ask the kind to checkpoint and return. Second: stop now."""
    def on_signal(signum, _frame):
        if STOP.is_set():
            raise KeyboardInterrupt
        print(f"tuigen worker: {signal.Signals(signum).name} received, saving a checkpoint and stopping",
              flush=True)
        STOP.set()

    def on_preempt(_signum, _frame):
        print("tuigen worker: SIGUSR1 received, saving a checkpoint to continue after a requeue", flush=True)
        PREEMPTED.set()
        STOP.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_preempt)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: we are in our own session


def _schedule_next(store: Store) -> None:
    try:
        from .scheduler import schedule

        schedule(store)
    except Exception as e:  # the run itself is recorded; a failed hand-off is retried by any tuigen call
        print(f"tuigen worker: could not start the next queued run: {e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

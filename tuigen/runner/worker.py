"""The worker: one process per run, the only writer of that run's state.

    TUIGEN_DB=URL python -m tuigen.runner.worker RUN_ID      (or --db-file FILE, for Slurm jobs)

The store URL comes from the environment or from a file only its owner can read, never from
argv: `ps` shows every process's argv to every user, and a URL may hold a password.

starting -> running -> completed | failed (traceback stored) | killed (SIGTERM/SIGINT: the
kind saves a checkpoint and returns). Each start is a new attempt of the run; every write of
this worker is conditional on its attempt. On exit it schedules the next queued run.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback

from pathlib import Path

from .. import config as config_schema
from ..errors import InputError
from ..experiments import get_kind
from ..store import COMPLETED, CRASHED, FAILED, HOST, KILLED, QUEUED, RUNNING, STARTING, UNKNOWN, Store, StoreBusy, StoreError
from . import ddp
from .process import start_time
from .slurm import requeue_self, restarted_by_slurm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuigen.runner.worker")
    p.add_argument("run_id", type=int)
    p.add_argument("--db-file", help="a file holding the store URL (default: $TUIGEN_DB)")
    args = p.parse_args(argv)
    _install_stop_handlers()  # before anything slow: a kill during start-up is still a clean stop
    url = Path(args.db_file).read_text().strip() if args.db_file else os.environ.get("TUIGEN_DB")
    if not url:
        print("tuigen worker: no store: set TUIGEN_DB or pass --db-file", file=sys.stderr, flush=True)
        return 2
    os.environ["TUIGEN_DB"] = url  # for what this worker starts: torchrun's ranks, an exec command
    store = Store(url)
    try:
        return execute(store, args.run_id)
    finally:
        _schedule_next(store)
        store.close()


def execute(store: Store, run_id: int) -> int:
    run = store.get_run(run_id)
    problem = store.folder_problem(run)
    if problem:  # never train into a folder that is not this run's (a marker names its owner)
        print(f"tuigen worker: run {run_id}: {problem}", flush=True)
        retrying(lambda: store.transition(run_id, FAILED, when=[STARTING, QUEUED], ended_at=time.time(),
                                          error=f"{problem}; tuigen will not use it"))
        return 1
    startable = [STARTING, QUEUED] + ([KILLED, CRASHED, UNKNOWN] if restarted_by_slurm(run) else [])
    attempt = retrying(lambda: store.start_attempt(run_id, startable, pid=os.getpid(), proc_start=start_time(),
                                                   host=HOST, started_at=time.time(), heartbeat_at=time.time(),
                                                   ended_at=None, error=None))
    if attempt is None:
        print(f"run {run_id} is {store.get_run(run_id).status}; nothing to do", flush=True)
        return 0
    print(f"tuigen worker pid {os.getpid()}: run {run_id} ({run.kind}) started, attempt {attempt}", flush=True)
    ctx = None
    status, error = COMPLETED, None
    try:
        kind = get_kind(run.kind)
        cfg = config_schema.from_json(kind.config, run.config)
        parallel = ddp.requested(run)  # several processes: torchrun's ranks train, rank 0 records
        ctx = _make_context(store, run, cfg, kind.uses_torch and not parallel, attempt)
        ctx.start()
        if not STOP.is_set():
            (ddp.supervise if parallel else kind.load())(cfg, ctx)
        if STOP.is_set() and (ctx.total is None or ctx.step < ctx.total):
            status = KILLED  # stopped early; a stop that arrives after the last step changes nothing
    except KeyboardInterrupt:  # a second signal while stopping
        status, error = KILLED, "stopped before a checkpoint could be saved"
    except BaseException as e:  # noqa: BLE001 - every failure is recorded, then re-raised below
        trace = "".join(traceback.format_exception(e))
        print(trace, file=sys.stderr, flush=True)
        # What the user asked for cannot work: one line says what; the traceback is in the log.
        status, error = FAILED, (_one_line(e) if isinstance(e, InputError) else trace)
    finally:
        if ctx is not None:
            try:
                ctx.close()
            except Exception as e:
                status, error = FAILED, (error or "") + f"\ncould not write the last metrics: {e}"
    if status == KILLED and PREEMPTED.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the requeue ends this attempt; all is saved
        status, error = requeue_self(store, run_id, attempt)  # Slurm starts the job again; it resumes
    try:
        if status != QUEUED:  # requeued: recorded queued already, and its next attempt may be running
            done = retrying(lambda: store.transition(run_id, status, when=[RUNNING, UNKNOWN], attempt=attempt,
                                                     ended_at=time.time(), error=error))
            if not done and store.get_run(run_id).attempt != attempt:
                print(f"tuigen worker: run {run_id} has a newer attempt; this one ({attempt}) records nothing",
                      flush=True)
                return 0
    except StoreError as e:  # e.g. its disk is full: say so in output.log, whose tail the reaper records
        print(f"tuigen worker: run {run_id} {status}, but the store could not record it: {e}", flush=True)
        return 1
    print(f"tuigen worker: run {run_id} {status}", flush=True)
    return 0 if status in (COMPLETED, KILLED, QUEUED) else 1


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def retrying(write):
    """Call a store write until a busy store lets it through (TUIGEN_STORE_RETRY at most): a
    run's start and end must be recorded, and a lock held for a while must not lose them."""
    from ..settings import store_retry_s

    deadline, pause, said = time.monotonic() + store_retry_s(), 0.2, False
    while True:
        try:
            return write()
        except StoreBusy:
            if time.monotonic() >= deadline:
                raise
            if not said:
                print("tuigen worker: the store is busy; retrying", flush=True)
                said = True
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _make_context(store: Store, run, cfg, uses_torch: bool, attempt: int):
    from .context import Context, TorchContext, threads_for_worker

    from .monitor import gpu_indices

    # the physical GPU(s) the scheduler (or Slurm) gave it: NVML's rows for the run are of these
    gpu_hint = gpu_indices(run.device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if not uses_torch:
        return Context(store, run.id, run.run_dir, cfg, gpu_hint=gpu_hint, stop=STOP, attempt=attempt)
    import torch  # in the worker only: the CLI and TUI never pay for it

    from ..trained.device import pick_device, tune_for

    torch.set_num_threads(threads_for_worker())
    # The launcher made the GPU the queue gave it the only one visible: it is cuda:0 in here,
    # whichever physical GPU (`--device cuda:N`) it is.
    device = pick_device("cuda:0" if run.device.startswith("cuda:") else getattr(cfg, "device", "auto"))
    tune_for(device)
    ctx = TorchContext(store, run.id, run.run_dir, cfg, device=device, gpu_hint=gpu_hint, stop=STOP,
                       attempt=attempt)
    from ..settings import count_syncs

    if count_syncs():
        ctx.count_syncs()
    if not run.device.startswith("cuda:"):  # keep the scheduler's claim: it counts busy GPUs by it
        ctx.update_run(device=str(ctx.device))
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

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
from ..store import COMPLETED, FAILED, HOST, KILLED, QUEUED, RUNNING, STARTING, Store
from .process import start_time


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
    if not store.transition(run_id, RUNNING, when=[STARTING, QUEUED], pid=os.getpid(),
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
        ctx = _make_context(store, run, cfg, kind.uses_torch)
        ctx.start()
        if not STOP.is_set():
            kind.load()(cfg, ctx)
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
    store.transition(run_id, status, when=[RUNNING], ended_at=time.time(), error=error)
    print(f"tuigen worker: run {run_id} {status}", flush=True)
    return 0 if status in (COMPLETED, KILLED) else 1


def _make_context(store: Store, run, cfg, uses_torch: bool):
    from .context import Context, TorchContext, threads_for_worker

    gpu_hint = int(run.device.split(":")[1]) if run.device.startswith("cuda:") else None
    if not uses_torch:
        return Context(store, run.id, run.run_dir, cfg, gpu_hint=gpu_hint, stop=STOP)
    import torch  # in the worker only: the CLI and TUI never pay for it

    torch.set_num_threads(threads_for_worker())
    ctx = TorchContext(store, run.id, run.run_dir, cfg, gpu_hint=gpu_hint, stop=STOP)
    store.update_run(run.id, device=str(ctx.device))
    return ctx


STOP = threading.Event()  # shared with the run's context as its stop flag


def _install_stop_handlers() -> None:
    """First SIGTERM/SIGINT: ask the kind to checkpoint and return. Second: stop now."""
    def on_signal(signum, _frame):
        if STOP.is_set():
            raise KeyboardInterrupt
        print(f"tuigen worker: {signal.Signals(signum).name} received, saving a checkpoint and stopping",
              flush=True)
        STOP.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: we are in our own session


def _schedule_next(store: Store) -> None:
    try:
        from .scheduler import schedule

        schedule(store)
    except Exception as e:  # the run itself is recorded; a failed hand-off is retried by any tuigen call
        print(f"tuigen worker: could not start the next queued run: {e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

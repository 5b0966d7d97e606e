"""Reconcile the store with the processes that really exist on this host.

A run marked starting/running whose process is gone — or whose pid now belongs to a
different process (start time differs) — is marked `crashed`, with the last lines of its
log as the error. Any tuigen process may call this; transitions are conditional, so a
worker finishing at the same moment wins cleanly.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..store import CRASHED, HOST, LIVE, STARTING, Store
from .process import is_alive

LOCAL_EXECUTORS = ("local", "inline")
SPAWN_GRACE_S = 60.0  # a claimed run whose worker never recorded a pid
LOG_TAIL_LINES = 20


def log_tail(run_dir: str | Path, lines: int = LOG_TAIL_LINES) -> str:
    path = Path(run_dir) / "output.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def reconcile(store: Store) -> list[int]:
    crashed = []
    now = time.time()
    for run in store.list_runs(status=LIVE):
        if run.host != HOST or run.executor not in LOCAL_EXECUTORS:
            continue  # other hosts: heartbeats decide (remote executors)
        if run.pid is None:
            if run.status == STARTING and now - (run.started_at or run.created_at) > SPAWN_GRACE_S:
                reason = "the worker never started"
            else:
                continue
        elif is_alive(run.pid, run.proc_start):
            continue
        else:
            reason = f"process {run.pid} is gone"
        tail = log_tail(run.run_dir)
        error = f"crashed: {reason}" + (f"\n--- last lines of output.log ---\n{tail}" if tail else "")
        if store.transition(run.id, CRASHED, when=LIVE, ended_at=now, error=error):
            store.add_event(run.id, f"marked crashed: {reason}", "error")
            crashed.append(run.id)
    return crashed

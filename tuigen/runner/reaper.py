"""Reconcile the store with the processes that really exist on this host.

A run marked starting/running whose process is gone — or whose pid now belongs to a
different process (start time differs) — is marked `crashed`, with the last lines of its
log as the error. Runs this host cannot see (other hosts, Slurm) are judged by heartbeats:
silent for longer than TUIGEN_HEARTBEAT_TIMEOUT, a run is `unknown` until its next heartbeat
(back to running) or until Slurm says how its job ended. Any tuigen process may call this;
transitions are conditional, so a worker finishing at the same moment wins cleanly.
"""
from __future__ import annotations

import time

import psutil

from ..settings import heartbeat_timeout_s
from ..store import CRASHED, HOST, LIVE, STARTING, UNKNOWN, Store
from . import slurm
from .logs import tail
from .process import is_alive

LOCAL_EXECUTORS = ("local", "inline")
SPAWN_GRACE_S = 60.0  # a claimed run whose worker never recorded a pid


def why_gone(pid: int) -> str:
    """is_alive said no: the pid is free, a zombie, or now another program's (pid reuse)."""
    try:
        p = psutil.Process(pid)
        if p.status() != psutil.STATUS_ZOMBIE:
            return f"process {pid} is gone (the pid now belongs to another process, {p.name()})"
    except psutil.Error:
        pass
    return f"process {pid} is gone"


def reconcile(store: Store) -> list[int]:
    """Mark runs whose worker is gone; returns the ids marked crashed on this host."""
    slurm.reconcile(store)
    crashed = []
    now = time.time()
    for run in store.list_runs(status=LIVE):
        if run.host != HOST or run.executor not in LOCAL_EXECUTORS:
            _check_heartbeat(store, run, now)  # no process to look at from here
            continue
        if run.pid is None:
            if run.status == STARTING and now - (run.started_at or run.created_at) > SPAWN_GRACE_S:
                reason = "the worker never started"
            else:
                continue
        elif is_alive(run.pid, run.proc_start):
            continue
        else:
            reason = why_gone(run.pid)
        last = tail(run.run_dir)
        error = f"crashed: {reason}" + (f"\n--- last lines of output.log ---\n{last}" if last else "")
        if store.transition(run.id, CRASHED, when=LIVE, ended_at=now, error=error):
            store.add_event(run.id, f"marked crashed: {reason}", "error")
            crashed.append(run.id)
    return crashed


def heartbeat_timeout() -> float:
    return heartbeat_timeout_s()


def _check_heartbeat(store: Store, run, now: float) -> None:
    """A remote run silent for too long is `unknown`, not crashed: its worker may be alive
    behind a network cut, and its next heartbeat makes it running again."""
    last = run.heartbeat_at or run.started_at or run.created_at
    if now - last <= heartbeat_timeout():
        return
    why = f"no heartbeat for {now - last:.0f} s from {run.host or 'its host'} ({run.executor} executor)"
    if store.transition(run.id, UNKNOWN, when=LIVE, error=why):
        store.add_event(run.id, f"marked unknown: {why}", "warning")

"""Is the process we recorded still the one running? (pid + start time, so a reused pid
is not mistaken for our worker.)"""
from __future__ import annotations

import os

import psutil

START_TOLERANCE_S = 0.05  # psutil reports create_time with jiffy resolution


def start_time(pid: int | None = None) -> float | None:
    try:
        return psutil.Process(pid or os.getpid()).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """True if `pid` exists, is not a zombie, and started when we recorded it."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - started) < START_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (a run may spawn data loaders or a command)."""
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []

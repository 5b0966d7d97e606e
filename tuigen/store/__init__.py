"""The run store: SQLAlchemy tables, engine setup, migrations and queries.

Never imports textual or torch: every tuigen process (TUI, CLI, worker) uses it. Names are
loaded on first use (PEP 562), so `from tuigen.store import ACTIVE` costs no SQLAlchemy import:
the TUI draws its first frame before the store's engine exists.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .statuses import (ACTIVE, COMPLETED, CRASHED, FAILED, FINISHED, KILLED, LIVE, PRUNED, QUEUED, RESUMABLE,
                       RUNNING, STARTING, STATUSES, UNKNOWN)

if TYPE_CHECKING:
    from .engine import resolve_url, runs_root
    from .identity import HOST, RunFolderError, current_user
    from .store import MetricPoint, RunNotFound, StaleAttempt, Store, StoreBusy, StoreError, StudyNotFound

_LAZY = {"resolve_url": "engine", "runs_root": "engine", "HOST": "identity", "RunFolderError": "identity",
         "current_user": "identity", **dict.fromkeys(("MetricPoint", "RunNotFound", "StaleAttempt", "Store",
                                                       "StoreBusy", "StoreError", "StudyNotFound"), "store")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["Store", "StoreError", "StoreBusy", "StaleAttempt", "RunNotFound", "RunFolderError", "StudyNotFound",
           "PRUNED", "MetricPoint", "HOST", "current_user", "resolve_url", "runs_root", "STATUSES",
           "QUEUED", "STARTING", "RUNNING", "COMPLETED", "FAILED", "KILLED", "CRASHED", "UNKNOWN",
           "ACTIVE", "LIVE", "FINISHED", "RESUMABLE"]

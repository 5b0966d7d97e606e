"""The run store: SQLAlchemy tables, engine setup, migrations and queries.

Never imports textual or torch: every tuigen process (TUI, CLI, worker) uses it.
"""
from .engine import resolve_url, runs_root
from .tables import (ACTIVE, COMPLETED, CRASHED, FAILED, FINISHED, KILLED, LIVE, PRUNED, QUEUED,
                     RESUMABLE, RUNNING, STARTING, STATUSES, UNKNOWN)
from .identity import HOST, RunFolderError, current_user
from .store import MetricPoint, RunNotFound, StaleAttempt, Store, StoreBusy, StoreError, StudyNotFound

__all__ = ["Store", "StoreError", "StoreBusy", "StaleAttempt", "RunNotFound", "RunFolderError", "StudyNotFound",
           "PRUNED", "MetricPoint", "HOST", "current_user", "resolve_url", "runs_root", "STATUSES",
           "QUEUED", "STARTING", "RUNNING", "COMPLETED", "FAILED", "KILLED", "CRASHED", "UNKNOWN",
           "ACTIVE", "LIVE", "FINISHED", "RESUMABLE"]

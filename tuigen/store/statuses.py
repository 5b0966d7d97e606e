"""Run states, apart from the tables so a reader that needs only these (the TUI's first frame)
does not import SQLAlchemy. Each transition is written by the process that owns it (see runner/)."""
from __future__ import annotations

QUEUED, STARTING, RUNNING = "queued", "starting", "running"
COMPLETED, FAILED, KILLED, CRASHED, UNKNOWN = "completed", "failed", "killed", "crashed", "unknown"
PRUNED = "pruned"  # a study's trial stopped early by its pruner (stopped like killed; the reason in `error`)
ACTIVE = (QUEUED, STARTING, RUNNING)
LIVE = (STARTING, RUNNING)
FINISHED = (COMPLETED, FAILED, KILLED, CRASHED, PRUNED)
RESUMABLE = (KILLED, CRASHED, FAILED, UNKNOWN)
STATUSES = ACTIVE + FINISHED + (UNKNOWN,)

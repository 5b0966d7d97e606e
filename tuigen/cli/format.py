"""How runs look in a terminal and in JSON."""
from __future__ import annotations

import json
import time
from typing import Any

STATUS_STYLE = {"queued": "yellow", "starting": "cyan", "running": "bold cyan", "completed": "green",
                "failed": "bold red", "killed": "magenta", "crashed": "bold red", "unknown": "dim"}


def duration(run) -> str:
    if not run.started_at:
        return "-"
    end = run.ended_at or time.time()
    s = int(end - run.started_at)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def number(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}"


def progress(run) -> str:
    return f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step or "-")


def run_dict(run, summary: dict | None = None) -> dict[str, Any]:
    d = {c: getattr(run, c) for c in ("id", "name", "kind", "project", "dataset", "status", "tags",
                                     "created_at", "started_at", "ended_at", "heartbeat_at", "host", "pid",
                                     "executor", "device", "step", "total_steps", "error", "run_dir",
                                     "parent_id", "sweep_id", "command")}
    d["tags"] = [t for t in run.tags.split(",") if t]
    d["config"] = json.loads(run.config or "{}")
    if summary is not None:
        d["metrics"] = {k: {"last": s.last, "last_step": s.last_step, "min": s.min, "max": s.max,
                            "count": s.count} for k, s in summary.items()}
    return d

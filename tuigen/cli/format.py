"""How runs look in a terminal and in JSON."""
from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from ..display import STATUS_STYLE, elapsed, number, safe_text

__all__ = ["STATUS_STYLE", "literal", "number", "run_dict", "run_time", "status_text", "step_text"]


def literal(value: Any, style: str = "", *, block: bool = False) -> Text:
    """User text for a Rich table or print: never parsed as markup, control characters visible
    (`block` keeps line breaks, for logs and tracebacks)."""
    return Text(safe_text("" if value is None else value, keep_newlines=block), style=style)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def run_time(run) -> str:
    """How long a run has run (to now while it runs)."""
    return elapsed(run.started_at, run.ended_at)


def step_text(run) -> str:
    """'120/300', or the bare step when the total is unknown."""
    return f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step or "-")


def run_dict(run, summary: dict | None = None) -> dict[str, Any]:
    d = {c: getattr(run, c) for c in ("id", "name", "kind", "project", "dataset", "status", "tags",
                                     "created_at", "started_at", "ended_at", "heartbeat_at", "host", "pid",
                                     "executor", "external_id", "device", "step", "total_steps", "error", "run_dir",
                                     "parent_id", "sweep_id", "study_id", "trial_number", "command", "uuid",
                                     "attempt", "launched_by", "launched_on")}
    d["tags"] = [t for t in run.tags.split(",") if t]
    d["config"] = json.loads(run.config or "{}")
    d["resources"] = json.loads(run.resources or "{}")
    if summary is not None:
        d["metrics"] = {k: {"last": s.last, "last_step": s.last_step, "min": s.min, "max": s.max,
                            "count": s.count} for k, s in summary.items()}
    return d

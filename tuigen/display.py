"""How run values read as text, shared by the CLI tables and the TUI (no heavy imports)."""
from __future__ import annotations

import time

STATUS_STYLE = {"queued": "yellow", "starting": "cyan", "running": "bold cyan", "completed": "green",
                "failed": "bold red", "killed": "magenta", "crashed": "bold red", "unknown": "dim"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def elapsed(started: float | None, ended: float | None) -> str:
    """A run's running time so far (to now while it runs)."""
    if not started:
        return "-"
    return duration((ended or time.time()) - started)


def number(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"

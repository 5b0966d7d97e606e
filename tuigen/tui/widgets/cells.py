"""How values look in tables: status colours, progress bars with ETA, durations."""
from __future__ import annotations

import time

from rich.text import Text

STATUS_STYLE = {"queued": "yellow", "starting": "cyan", "running": "bold cyan", "completed": "green",
                "failed": "bold red", "killed": "magenta", "crashed": "bold red", "unknown": "dim"}


def status(s: str) -> Text:
    return Text(s, style=STATUS_STYLE.get(s, ""))


def progress(step: int, total: int | None, rate: float | None, width: int = 10) -> Text:
    if not total:
        return Text(str(step or "-"))
    frac = min(1.0, step / total)
    filled = int(frac * width)
    eta = ""
    if rate and rate > 0 and step < total:
        eta = " " + duration((total - step) / rate)
    return Text.assemble(("█" * filled, "cyan"), ("░" * (width - filled), "dim"), f" {step}/{total}{eta}")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def elapsed(started: float | None, ended: float | None) -> str:
    if not started:
        return "-"
    return duration((ended or time.time()) - started)


def number(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"

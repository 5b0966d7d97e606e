"""How values look in tables: status colours, progress bars with ETA, durations."""
from __future__ import annotations

from rich.text import Text

from ...display import STATUS_STYLE, duration, elapsed, number

__all__ = ["STATUS_STYLE", "duration", "elapsed", "number", "progress_bar", "status"]


def status(s: str) -> Text:
    return Text(s, style=STATUS_STYLE.get(s, ""))


def progress_bar(step: int, total: int | None, rate: float | None, width: int = 10) -> Text:
    """A bar of `width` cells, step/total and the ETA at `rate` steps/s."""
    if not total:
        return Text(str(step or "-"))
    frac = min(1.0, step / total)
    filled = int(frac * width)
    eta = ""
    if rate and rate > 0 and step < total:
        eta = " " + duration((total - step) / rate)
    return Text.assemble(("█" * filled, "cyan"), ("░" * (width - filled), "dim"), f" {step}/{total}{eta}")

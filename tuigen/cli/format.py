"""How runs look in a terminal and in JSON."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from ..display import STATUS_STYLE, elapsed, number, safe_text

__all__ = ["STATUS_STYLE", "Column", "fit_table", "literal", "number", "run_dict", "run_time", "status_text", "step_text"]


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


@dataclass(frozen=True)
class Column:
    """A column of a listing that must fit the terminal (or a pipe's COLUMNS, 80 by default)."""

    header: str
    right: bool = False
    drop: int = 0  # narrow output drops columns with the highest `drop` first; 0: never dropped
    cap: int = 0  # cells wider than this are cut before any column is dropped (0: no cap)
    least: int = 0  # when dropping is not enough, it may be shortened to this width (0: never)


GAP = 2  # what Rich puts between two columns of a box-less table


def fit_table(columns: Sequence[Column], rows: Sequence[Sequence[Text]], width: int) -> Table:
    """A table that fits `width` without wrapping a row: cells beyond their column's cap are cut,
    then columns are dropped (empty ones first, then by `drop`), then the shortenable ones
    shrink toward their `least` width, rightmost first."""
    natural = [max([cell_len(c.header)] + [r[i].cell_len for r in rows]) for i, c in enumerate(columns)]
    widths = dict(enumerate(natural))

    def over() -> int:
        return sum(widths.values()) + GAP * (len(widths) - 1) - width

    if over() > 0:
        widths = {i: min(n, columns[i].cap or n) for i, n in widths.items()}

    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    empty = [i for i in droppable if all(r[i].plain.strip() in ("", "-") for r in rows)]
    for i in empty + droppable:
        if over() <= 0:
            break
        widths.pop(i, None)
    for i in sorted(widths, reverse=True):
        if over() > 0 and columns[i].least:
            widths[i] = max(min(columns[i].least, widths[i]), widths[i] - over())
    t = Table(box=None, header_style="bold", pad_edge=False)
    for i in sorted(widths):
        t.add_column(columns[i].header, justify="right" if columns[i].right else "left", no_wrap=True,
                     min_width=widths[i], max_width=widths[i])
    for r in rows:
        t.add_row(*[_cut(r[i], widths[i], from_left=columns[i].right) for i in sorted(widths)])
    return t


def _cut(text: Text, width: int, *, from_left: bool) -> Text:
    """`text` in `width` cells with an ellipsis where it was cut: at the start of a right-aligned
    column, so a score keeps its number ("…racy 0.9123"), at the end of the others."""
    if text.cell_len <= width:
        return text
    if from_left:
        return Text("…") + text[len(text) - (width - 1):]
    return text[:width - 1] + Text("…")

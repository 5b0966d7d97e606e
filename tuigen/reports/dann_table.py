"""The domain-adaptation table (EXPERIMENTS.md section 6): target accuracy per scenario for
the three training regimes.

                      MNIST -> MNIST-M   MNIST -> DIGITS
    trained on source 0.2750             0.8079
    adaptation (DANN) 0.4651             0.8272
    trained on target 0.9369             0.9757

Each cell is the best completed `dann` run of that mode and (source, target) scenario, by
`target_acc` (its maximum over the logged epochs by default; `stat="last"` takes the final
epoch's). Every cell keeps its run id, so a number can be traced back (`with_ids=True`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from ..config import knobs
from ..experiments.dann import DANNConfig, scenario_name

SCORE_KEY = "target_acc"
# (row label, mode), in the report's order
ROWS: tuple[tuple[str, str], ...] = (("trained on source", "source-only"), ("adaptation (DANN)", "dann"),
                                     ("trained on target", "target-only"))


@dataclass(frozen=True)
class Cell:
    value: float
    run_id: int


def _config(run: Any) -> dict:
    defaults = {k.name: k.default for k in knobs(DANNConfig)}
    try:
        stored = json.loads(run.config or "{}")
    except (TypeError, ValueError):
        stored = {}
    return {**defaults, **(stored if isinstance(stored, dict) else {})}


def dann_table(store: Any, *, stat: str = "max", tag: str | None = None, project: str | None = None,
               run_ids: Sequence[int] | None = None) -> tuple[list[str], list[tuple[str, list[Cell | None]]]]:
    """(columns, rows): columns are the "SOURCE -> TARGET" scenarios present among completed
    dann runs (in the order their first run was created); rows are (label, cells) in ROWS
    order, one cell per column, None where no completed run of that mode and scenario exists.
    `run_ids` limits it to those runs (a report's)."""
    if stat not in ("max", "last"):
        raise ValueError(f"stat must be 'max' or 'last', got {stat!r}")
    runs = store.list_runs(kind="dann", status="completed", tag=tag, project=project, newest_first=False)
    if run_ids is not None:
        runs = [r for r in runs if r.id in set(run_ids)]
    summaries = store.summary([r.id for r in runs]) if runs else {}
    columns: list[str] = []
    best: dict[tuple[str, str], Cell] = {}
    for run in runs:
        cfg = _config(run)
        column = scenario_name(str(cfg["source"]), str(cfg["target"]))
        if column not in columns:
            columns.append(column)
        s = summaries.get(run.id, {}).get(SCORE_KEY)
        if s is None:
            continue
        value = float(getattr(s, stat))
        key = (column, str(cfg["mode"]))
        if key not in best or value > best[key].value:  # ties keep the earlier run
            best[key] = Cell(value, run.id)
    rows = [(label, [best.get((c, mode)) for c in columns]) for label, mode in ROWS]
    return columns, rows


def format_dann_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell | None]]], *,
                      with_ids: bool = False, digits: int = 4) -> str:
    """Fixed-width text: 4 decimals like the report, '-' for missing cells; with_ids adds the
    run id of each number, e.g. '0.4651 (run 12)'."""
    def cell(c: Cell | None) -> str:
        if c is None:
            return "-"
        return f"{c.value:.{digits}f}" + (f" (run {c.run_id})" if with_ids else "")

    header = ["", *columns]
    body = [[label, *(cell(c) for c in cells)] for label, cells in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip() for r in [header, *body]]
    if not columns:
        lines.append("(no completed dann runs)")
    return "\n".join(lines)


def dann_table_dict(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell | None]]]) -> dict:
    """The table as JSON-ready data (for `--json`): cells are {"value", "run_id"} or null."""
    return {"columns": list(columns),
            "rows": [{"label": label, "cells": [None if c is None else {"value": c.value, "run_id": c.run_id}
                                               for c in cells]} for label, cells in rows]}

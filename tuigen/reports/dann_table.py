"""The domain-adaptation table (EXPERIMENTS.md section 6): target accuracy per scenario for
the three training regimes.

                      MNIST -> MNIST-M   MNIST -> DIGITS
    trained on source 0.2750             0.8079
    adaptation (DANN) 0.4651             0.8272
    trained on target 0.9369             0.9757

Each run gives one number, its held-out `target_acc` at an epoch chosen by a rule that never
looks at target labels: `last` (default) takes the final epoch; `best-source-val` the epoch
with the best source validation accuracy (`source_acc`, the earliest on ties). A cell is the
mean of every completed `dann` run of that mode and scenario (seeds, say; filter with a tag or
project), with the standard deviation over runs and their ids, so a number can be traced back.
No run is ever picked for its target accuracy.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from ..config import knobs
from ..experiments.dann import DANNConfig, scenario_name

SCORE_KEY = "target_acc"
SELECTION_KEY = "source_acc"
RULES = {"last": "target accuracy at each run's last epoch",
         "best-source-val": "target accuracy at each run's epoch of best source validation accuracy"}
# (row label, mode), in the report's order
ROWS: tuple[tuple[str, str], ...] = (("trained on source", "source-only"), ("adaptation (DANN)", "dann"),
                                     ("trained on target", "target-only"))


@dataclass(frozen=True)
class Cell:
    values: tuple[float, ...]  # one per run, in run order
    run_ids: tuple[int, ...]

    @property
    def value(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """Sample standard deviation over the runs; None for a single run."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def _config(run: Any) -> dict:
    defaults = {k.name: k.default for k in knobs(DANNConfig)}
    try:
        stored = json.loads(run.config or "{}")
    except (TypeError, ValueError):
        stored = {}
    return {**defaults, **(stored if isinstance(stored, dict) else {})}


def run_number(store: Any, run_id: int, rule: str) -> float | None:
    """The run's target accuracy by `rule`, from its per-epoch metrics (None before its first epoch)."""
    target = {p.step: p.value for p in store.metrics(run_id, SCORE_KEY)}
    if not target:
        return None
    if rule == "last":
        return target[max(target)]
    source = [(p.value, -p.step) for p in store.metrics(run_id, SELECTION_KEY) if p.step in target]
    if not source:
        return None
    _, minus_step = max(source)  # the best source accuracy, the earliest epoch on ties
    return target[-minus_step]


def dann_table(store: Any, *, rule: str = "last", tag: str | None = None, project: str | None = None,
               run_ids: Sequence[int] | None = None) -> tuple[list[str], list[tuple[str, list[Cell | None]]]]:
    """(columns, rows): columns are the "SOURCE -> TARGET" scenarios present among completed
    dann runs (in the order their first run was created); rows are (label, cells) in ROWS
    order, one cell per column, None where no completed run of that mode and scenario exists.
    `run_ids` limits it to those runs (a report's)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    runs = store.list_runs(kind="dann", status="completed", tag=tag, project=project, newest_first=False)
    if run_ids is not None:
        runs = [r for r in runs if r.id in set(run_ids)]
    columns: list[str] = []
    found: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for run in runs:
        cfg = _config(run)
        column = scenario_name(str(cfg["source"]), str(cfg["target"]))
        if column not in columns:
            columns.append(column)
        value = run_number(store, run.id, rule)
        if value is not None:
            found.setdefault((column, str(cfg["mode"])), []).append((value, run.id))
    cells = {key: Cell(tuple(v for v, _ in got), tuple(i for _, i in got)) for key, got in found.items()}
    rows = [(label, [cells.get((c, mode)) for c in columns]) for label, mode in ROWS]
    return columns, rows


def describe(rule: str) -> str:
    """The table's header line: what each number is."""
    return f"{RULES[rule]} (rule {rule}); mean ± sd over completed runs"


def format_dann_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell | None]]], *,
                      rule: str = "last", with_ids: bool = False, digits: int = 4) -> str:
    """Fixed-width text under a line naming the rule: 4 decimals like the report, ± the spread
    over runs and (n=runs) when there are several, '-' for missing cells; with_ids adds the run
    ids of each number, e.g. '0.4651 ± 0.0100 (n=3; runs 12, 15, 18)'."""
    def cell(c: Cell | None) -> str:
        if c is None:
            return "-"
        text = f"{c.value:.{digits}f}"
        if c.std is not None:
            text += f" ± {c.std:.{digits}f} (n={len(c.values)}"
            text += f"; runs {', '.join(map(str, c.run_ids))})" if with_ids else ")"
        elif with_ids:
            text += f" (run {c.run_ids[0]})"
        return text

    header = ["", *columns]
    body = [[label, *(cell(c) for c in cells)] for label, cells in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [describe(rule)]
    lines += ["  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip() for r in [header, *body]]
    if not columns:
        lines.append("(no completed dann runs)")
    return "\n".join(lines)


def dann_table_dict(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell | None]]], *,
                    rule: str = "last") -> dict:
    """The table as JSON-ready data (for `--json`): cells are {"value", "std", "n", "values",
    "run_ids"} or null."""
    def cell(c: Cell | None) -> dict | None:
        if c is None:
            return None
        return {"value": c.value, "std": c.std, "n": len(c.values), "values": list(c.values),
                "run_ids": list(c.run_ids)}

    return {"rule": rule, "describes": describe(rule), "columns": list(columns),
            "rows": [{"label": label, "cells": [cell(c) for c in cells]} for label, cells in rows]}

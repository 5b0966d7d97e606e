"""A study's trials ranked by their objective (`tuigen board --study NAME`, the TUI's studies
screen). Read from the store alone, by the rule the study's driver tells Optuna: a trial's
objective is the last of its objective points (store.objective_points). Completed trials rank
first; running ones show their latest value, pruned ones the value they were stopped at."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..display import safe_text
from ..store import ACTIVE, COMPLETED, PRUNED, Store
from .leaderboard import _fmt, varying_params

ORDER = {"complete": 0, "running": 1, "pruned": 2, "failed": 3}


@dataclass
class TrialRow:
    rank: int | None  # among completed trials
    trial: int
    run_id: int
    name: str
    state: str  # complete | running | pruned | failed
    params: dict[str, Any]
    value: float | None
    step: int | None
    note: str  # why it was pruned or failed


@dataclass
class StudyBoard:
    name: str
    kind: str
    objective: str
    direction: str
    status: str
    trials_asked: int
    columns: list[str]
    rows: list[TrialRow]

    @property
    def best(self) -> TrialRow | None:
        return self.rows[0] if self.rows and self.rows[0].state == "complete" else None


def _state(status: str) -> str:
    if status == COMPLETED:
        return "complete"
    if status == PRUNED:
        return "pruned"
    return "running" if status in ACTIVE or status == "unknown" else "failed"


def study_board(store: Store, name: str) -> StudyBoard:
    study = store.get_study(name)
    runs = store.list_runs(study_id=study.id, newest_first=False)
    configs = [json.loads(r.config or "{}") for r in runs]
    space = list(json.loads(study.spec).get("space", {}))
    columns = [c for c in varying_params(configs) if c in space] or space
    rows = []
    for run, cfg in zip(runs, configs):
        points = store.objective_points(run.id, study.objective)
        step, value = points[-1] if points else (None, None)
        state = _state(run.status)
        if state == "complete" and value is None:
            state = "failed"
        note = run.error.splitlines()[0] if state in ("pruned", "failed") and run.error else ""
        rows.append(TrialRow(None, run.trial_number, run.id, run.name, state, {c: cfg.get(c) for c in columns},
                             value, step, note))
    sign = 1 if study.direction == "minimize" else -1
    rows.sort(key=lambda r: (ORDER[r.state], sign * r.value if r.value is not None else 0, r.trial))
    for i, r in enumerate(x for x in rows if x.state == "complete"):
        r.rank = i + 1
    return StudyBoard(study.name, study.kind, study.objective, study.direction, study.status,
                      json.loads(study.spec).get("trials", len(rows)), columns, rows)


def format_study_board(board: StudyBoard) -> str:
    done = sum(r.state in ("complete", "pruned", "failed") for r in board.rows)
    lines = [f"study {safe_text(board.name)} ({board.kind}): {board.objective}, {board.direction}; "
             f"{done} of {board.trials_asked} trials finished, {board.status}"]
    if board.best:
        b = board.best
        lines.append(f"best so far: trial {b.trial} (run {b.run_id}) {board.objective} {b.value:.4g} with "
                     + ", ".join(f"{k}={_fmt(v)}" for k, v in b.params.items()))
    header = ["#", "trial", "run", "state", *board.columns, board.objective, "step"]
    table = [[str(r.rank or "-"), str(r.trial), str(r.run_id), r.state, *[_fmt(r.params[c]) for c in board.columns],
              "-" if r.value is None else f"{r.value:.4g}", "-" if r.step is None else str(r.step)]
             for r in board.rows]
    widths = [max(len(x) for x in col) for col in zip(header, *table)]
    lines.append("")
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *table]]
    notes = [f"trial {r.trial}: {safe_text(r.note)}" for r in board.rows if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def study_board_dict(board: StudyBoard) -> dict:
    return {"name": board.name, "kind": board.kind, "objective": board.objective, "direction": board.direction,
            "status": board.status, "trials": board.trials_asked, "columns": board.columns,
            "best": vars(board.best) if board.best else None, "rows": [vars(r) for r in board.rows]}

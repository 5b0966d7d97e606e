"""Leaderboards: runs ranked by a score, only among scores of the same provenance.

Reads the store only (no torch), so the CLI and the TUI share it. The columns are the
hyperparameters that vary among the ranked runs — the researchers' own tuning table
(batch_size, lr, channels, dim_mults -> FID) falls out of it.

A run's entry follows one stated rule: by default its score at its newest evaluated
checkpoint (so a run scored ten times does not beat an equal run scored once by luck of the
draw); with `best`, its best score over all its evaluations. Every row says how many
evaluations its run has, and the board's header names the rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..experiments import scores
from ..store import Store


@dataclass
class BoardRow:
    rank: int
    run_id: int
    name: str
    kind: str
    dataset: str
    params: dict[str, Any]
    value: float
    std: float | None
    step: int | None
    evaluations: int = 1  # the run's scores under this provenance


@dataclass
class Board:
    metric: str
    higher_is_better: bool
    provenance: dict
    provenance_key: str | None
    columns: list[str]
    rows: list[BoardRow]
    others: list[tuple[str, int, dict]] = field(default_factory=list)  # (key, runs, provenance) not ranked
    best: bool = False  # the rule: each run's best score, else its score at its newest evaluated checkpoint

    @property
    def rule(self) -> str:
        """The rule that picks each run's entry, in words (board headers say it)."""
        if self.best:
            return "each run's best score over all its evaluations"
        return "each run's score at its newest evaluated checkpoint"


def leaderboard(store: Store, metric: str, *, dataset: str | None = None, kind: str | None = None,
                provenance_key: str | None = None, best: bool = False, run_ids: Sequence[int] | None = None) -> Board:
    """Provenances are counted in SQL and only the chosen one's rows come back; each run's
    entry is then picked in Python by the board's rule (see the module's docstring).
    `run_ids` ranks only those runs (a sweep's, a study's)."""
    among = dict(run_ids=run_ids) if run_ids is not None else {}
    known = scores().get(metric)
    higher = known.higher_is_better if known else False
    groups = {key: (n, newest) for key, n, newest in store.score_groups(metric, dataset=dataset, kind=kind, **among)}
    if not groups:
        return Board(metric, higher, {}, None, [], [], best=best)
    if provenance_key is None:  # the provenance most runs share (ties: the newest)
        provenance_key = max(groups, key=lambda k: groups[k])
    if provenance_key not in groups:
        raise ValueError(f"no {metric} scores with provenance {provenance_key}; known: {', '.join(groups)}")
    entries = store.board_scores(metric, provenance_key, higher, best=best, dataset=dataset, kind=kind, **among)
    configs = [json.loads(r[4] or "{}") for r in entries]
    columns = varying_params(configs)
    rows = [BoardRow(i + 1, r[0], r[1], r[2], r[3], {c: cfg.get(c) for c in columns}, r[5], r[6], r[7], r[8])
            for i, (r, cfg) in enumerate(zip(entries, configs))]
    others = [(k, n, store.score_provenance(newest)) for k, (n, newest) in groups.items() if k != provenance_key]
    return Board(metric, higher, store.score_provenance(groups[provenance_key][1]), provenance_key, columns, rows,
                 others, best)


def varying_params(configs: list[dict]) -> list[str]:
    """Config keys whose values differ among the runs, in declaration order."""
    keys: dict[str, None] = {}
    for c in configs:
        keys.update(dict.fromkeys(c))
    return [k for k in keys if len({_comparable(c.get(k)) for c in configs}) > 1]


def _comparable(v: Any) -> Any:
    """A set member equal only for equal config values (1, 1.0 and True stay apart). JSON text
    only for lists and dicts: dumping every value made a 5,000-run board miss 100 ms."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else (type(v), v)


def format_board(board: Board) -> str:
    if not board.rows:
        return f"no {board.metric} scores yet (tuigen fid RUN / tuigen accuracy RUN record them)"
    direction = "higher" if board.higher_is_better else "lower"
    lines = [f"{board.metric} ({direction} is better), ranked among scores with provenance {board.provenance_key}:",
             "  " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(board.provenance.items())),
             f"entry: {board.rule}" + ("" if board.best else " (--best: its best over all evaluations)")]
    header = ["#", "run", "name", *board.columns, board.metric, "step", "evals"]
    table = [[str(r.rank), str(r.run_id), r.name, *[_fmt(r.params[c]) for c in board.columns],
              f"{r.value:.4g}" + (f" ± {r.std:.2g}" if r.std else ""), str(r.step if r.step is not None else "-"),
              str(r.evaluations)]
             for r in board.rows]
    widths = [max(len(x) for x in col) for col in zip(header, *table)]
    lines.append("")
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *table]]
    for key, n, prov in board.others:
        lines.append(f"\nnot ranked here: {n} run(s) scored with provenance {key} "
                     f"({_diff(board.provenance, prov)}); see tuigen board --metric {board.metric} --provenance {key}")
    return "\n".join(lines)


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    parts = [f"{k}={_fmt(b.get(k))} instead of {_fmt(a.get(k))}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(parts) or "same settings"


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "(" + ",".join(map(str, v)) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)

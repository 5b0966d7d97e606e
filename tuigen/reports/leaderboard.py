"""Leaderboards: runs ranked by a score, only among scores of the same provenance.

Reads the store only (no torch), so the CLI and the TUI share it. The columns are the
hyperparameters that vary among the ranked runs — the researchers' own tuning table
(batch_size, lr, channels, dim_mults -> FID) falls out of it.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..store import Store

HIGHER_IS_BETTER = {"accuracy": True, "target_acc": True, "val_acc": True, "fid": False, "kid": False}


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


@dataclass
class Board:
    metric: str
    higher_is_better: bool
    provenance: dict
    provenance_key: str | None
    columns: list[str]
    rows: list[BoardRow]
    others: list[tuple[str, int, dict]] = field(default_factory=list)  # (key, runs, provenance) not ranked


def leaderboard(store: Store, metric: str, *, dataset: str | None = None, kind: str | None = None,
                provenance_key: str | None = None) -> Board:
    higher = HIGHER_IS_BETTER.get(metric, False)
    runs = {r.id: r for r in store.list_runs(kind=kind, dataset=dataset)}
    scores = store.scores(metric=metric, run_ids=list(runs)) if runs else []
    groups: dict[str, list] = {}
    for s in scores:
        groups.setdefault(s.provenance_key, []).append(s)
    if not groups:
        return Board(metric, higher, {}, None, [], [])
    runs_per_group = Counter({k: len({s.run_id for s in v}) for k, v in groups.items()})
    if provenance_key is None:  # the provenance most runs share
        provenance_key = max(runs_per_group, key=lambda k: (runs_per_group[k], max(s.id for s in groups[k])))
    if provenance_key not in groups:
        raise ValueError(f"no {metric} scores with provenance {provenance_key}; known: {', '.join(groups)}")
    chosen = groups[provenance_key]
    best: dict[int, Any] = {}
    for s in chosen:  # each run's best score under this provenance
        cur = best.get(s.run_id)
        if cur is None or (s.value > cur.value if higher else s.value < cur.value):
            best[s.run_id] = s
    ordered = sorted(best.values(), key=lambda s: -s.value if higher else s.value)
    configs = {rid: json.loads(runs[rid].config or "{}") for rid in best}
    columns = varying_params(list(configs.values()))
    rows = [BoardRow(i + 1, s.run_id, runs[s.run_id].name, runs[s.run_id].kind, runs[s.run_id].dataset,
                     {c: configs[s.run_id].get(c) for c in columns}, s.value, s.std, s.step)
            for i, s in enumerate(ordered)]
    others = [(k, runs_per_group[k], json.loads(v[0].provenance)) for k, v in groups.items() if k != provenance_key]
    return Board(metric, higher, json.loads(chosen[0].provenance), provenance_key, columns, rows, others)


def varying_params(configs: list[dict]) -> list[str]:
    """Config keys whose values differ among the runs, in declaration order."""
    keys: list[str] = []
    for c in configs:
        keys += [k for k in c if k not in keys]
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]


def format_board(board: Board) -> str:
    if not board.rows:
        return f"no {board.metric} scores yet (tuigen fid RUN / tuigen accuracy RUN record them)"
    direction = "higher" if board.higher_is_better else "lower"
    lines = [f"{board.metric} ({direction} is better), ranked among scores with provenance {board.provenance_key}:",
             "  " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(board.provenance.items()))]
    header = ["#", "run", "name", *board.columns, board.metric, "step"]
    table = [[str(r.rank), str(r.run_id), r.name, *[_fmt(r.params[c]) for c in board.columns],
              f"{r.value:.4g}" + (f" ± {r.std:.2g}" if r.std else ""), str(r.step if r.step is not None else "-")]
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

"""Leaderboards: runs ranked by a score, only among scores of the same provenance.

Reads the store only (no torch), so the CLI and the TUI share it. The columns are the
hyperparameters that vary among the ranked runs — the researchers' own tuning table
(batch_size, lr, channels, dim_mults -> FID) falls out of it.
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
                provenance_key: str | None = None, run_ids: Sequence[int] | None = None) -> Board:
    """Provenances are counted in SQL and only the chosen one's rows come back; each run's
    entry is then picked in Python. `run_ids` ranks only those runs (a sweep's, a study's)."""
    among = dict(run_ids=run_ids) if run_ids is not None else {}
    known = scores().get(metric)
    higher = known.higher_is_better if known else False
    groups = {key: (n, newest) for key, n, newest in store.score_groups(metric, dataset=dataset, kind=kind, **among)}
    if not groups:
        return Board(metric, higher, {}, None, [], [])
    if provenance_key is None:  # the provenance most runs share (ties: the newest)
        provenance_key = max(groups, key=lambda k: groups[k])
    if provenance_key not in groups:
        raise ValueError(f"no {metric} scores with provenance {provenance_key}; known: {', '.join(groups)}")
    best = store.best_scores(metric, provenance_key, higher, dataset=dataset, kind=kind, **among)
    configs = [json.loads(r[4] or "{}") for r in best]
    columns = varying_params(configs)
    rows = [BoardRow(i + 1, r[0], r[1], r[2], r[3], {c: cfg.get(c) for c in columns}, r[5], r[6], r[7])
            for i, (r, cfg) in enumerate(zip(best, configs))]
    others = [(k, n, store.score_provenance(newest)) for k, (n, newest) in groups.items() if k != provenance_key]
    return Board(metric, higher, store.score_provenance(groups[provenance_key][1]), provenance_key, columns, rows,
                 others)


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

"""The one score a runs listing shows for a run (CLI `ls` and the TUI alike).

The rule is the leaderboard's: the score at the run's newest evaluated checkpoint. Stored
scores come first, in the order the run's kind declares them (`tuigen fid`, `tuigen accuracy`,
the periodic FID); without any, the newest value of a score logged as a metric during training
(a classifier's val_acc, a DANN run's target_acc).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence

from ..experiments import KINDS, scores

if TYPE_CHECKING:
    from ..store import Store


class RunScore(NamedTuple):
    """What a listing shows: `metric, value = score` unpacks it."""

    metric: str  # the score's key: fid, accuracy, val_acc, ...
    value: float

    @property
    def label(self) -> str:
        """How the metric is named in a column: FID, accuracy, target accuracy."""
        known = scores().get(self.metric)
        return known.title if known else self.metric


def run_scores(store: Store, run_ids: Sequence[int]) -> dict[int, RunScore]:
    """{run_id: RunScore} for the runs that have one, read in one query."""
    keys = sorted(scores())  # every score any kind declares: a handful of names
    kinds: dict[int, str] = {}
    found: dict[tuple[int, int, str], tuple] = {}  # (run, stored, metric) -> its newest (value, order)
    for run_id, kind, stored, metric, value, step, sid in store.score_candidates(list(run_ids), keys):
        kinds[run_id] = kind
        order = (step if step is not None else -1, sid)
        mine = found.get((run_id, stored, metric))
        if mine is None or order > mine[1]:
            found[(run_id, stored, metric)] = (value, order)
    return {i: s for i, kind in kinds.items() if (s := _pick(kind, i, found)) is not None}


def _pick(kind: str, run_id: int, found: dict) -> RunScore | None:
    """Stored before logged; within each, the order the kind declares its scores in."""
    declared = KINDS[kind].scores if kind in KINDS else ()
    for stored in (1, 0):
        for sc in declared:
            hit = found.get((run_id, stored, sc.key))
            if hit is not None:
                return RunScore(sc.key, hit[0])
    return None

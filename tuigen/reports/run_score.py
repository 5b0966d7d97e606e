"""The one score a runs listing shows for a run (CLI `ls` and the TUI alike).

The rule is the leaderboard's: the score at the run's newest evaluated checkpoint. Stored
scores come first, in the order the run's kind declares them (`tuigen fid`, `tuigen accuracy`,
the periodic FID); without any, the newest value of a score logged as a metric during training
(a classifier's val_acc, a DANN run's target_acc).
"""
from __future__ import annotations

from typing import Mapping

from ..experiments import KINDS


def run_score(kind: str, stored: Mapping[str, tuple[float, int | None]], summary: Mapping) -> tuple[str, float] | None:
    """(label, value) or None. `stored`: {metric: (value, step)} from store.newest_scores;
    `summary`: {key: row with .last} from the metric summary."""
    k = KINDS.get(kind)
    if k is None:
        return None
    for sc in k.scores:
        if sc.key in stored:
            return sc.title, stored[sc.key][0]
    for sc in k.scores:
        if sc.key in summary:
            return sc.title, summary[sc.key].last
    return None

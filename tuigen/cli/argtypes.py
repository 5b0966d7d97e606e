"""argparse value types that carry their rule, so a bad value is a usage error (exit 2) that
names the flag and what was expected before anything is loaded: `-n 0` never reaches torch."""
from __future__ import annotations

import argparse
from typing import Callable


def bounded(kind: type, lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """int or float within [lo, hi]; argparse prefixes the message with the flag's name."""
    noun = "an integer" if kind is int else "a number"
    rule = " and ".join(part for part in (f">= {lo:g}" if lo is not None else "",
                                          f"<= {hi:g}" if hi is not None else "") if part)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {rule}".strip()  # argparse's fallback wording
    return parse


def device(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps: the rule a run's --device follows."""
    from ..experiments.base import device_rule

    problem = device_rule(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text

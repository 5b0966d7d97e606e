"""Sweeps: several values of a knob separated by `|` make a grid (the TUI form and `tuigen sweep`
take the same text). `|` rather than a comma, so list-valued knobs keep theirs:
`--dim_mults '1,2,4|1,2,4,8'` is two values. Every value is checked against the kind's schema
before anything is queued; `--random K` draws K distinct combinations of the grid instead of
running all of it."""
from __future__ import annotations

import itertools
import random as _random

from .. import config as schema
from ..config import ConfigError

SWEEP_SEP = "|"


def split_values(text: str) -> list[str]:
    return [v.strip() for v in text.split(SWEEP_SEP)] if SWEEP_SEP in text else [text.strip()]


def check_values(k: schema.Knob, text: str) -> None:
    """ConfigError naming the knob and the value, for the first value of `text` its rule refuses."""
    for raw in split_values(text):
        schema.check_value(k, schema.parse_value(k, raw))


def grid_of(cls: type, texts: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(single values, grid of several) from {knob: text}, each value checked."""
    ks = {k.name: k for k in schema.knobs(cls)}
    values, grid = {}, {}
    for name, text in texts.items():
        if name not in ks:
            raise ConfigError(f"unknown option --{name} for {cls.__name__}")
        check_values(ks[name], text)
        parts = split_values(text)
        if len(parts) > 1:
            grid[name] = parts
        else:
            values[name] = parts[0]
    return values, grid


def combinations(grid: dict[str, list], *, random: int | None = None, seed: int = 0) -> list[dict]:
    """Every combination of the grid (the first knob varies slowest), or `random` distinct
    ones drawn with `seed`, in the grid's order."""
    keys = list(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if random is None:
        return combos
    if random > len(combos):
        raise ConfigError(f"--random {random}: the grid has only {len(combos)} combination(s); "
                          f"ask for at most {len(combos)}")
    picked = sorted(_random.Random(seed).sample(range(len(combos)), random))
    return [combos[i] for i in picked]

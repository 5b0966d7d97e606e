"""Experiment kinds: each a typed config and a run(cfg, ctx) function.

Adding a kind = a module here with its config dataclass, plus one entry in KINDS.
"""
from __future__ import annotations

from ..config import ConfigError
from .base import ExperimentKind, Runtime, Score
from .classifier import KIND as CLASSIFIER
from .dann import KIND as DANN
from .diffusion import COND_DDPM, DDPM
from .exec_command import KIND as EXEC
from .gan import CGAN, DCGAN, STYLEGAN

KINDS: dict[str, ExperimentKind] = {k.name: k for k in (DDPM, COND_DDPM, DCGAN, CGAN, STYLEGAN, DANN, CLASSIFIER, EXEC)}


def get_kind(name: str) -> ExperimentKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown experiment kind '{name}'; expected one of {', '.join(KINDS)}") from None


def data_parallel_kinds() -> str:
    """The kinds that train data-parallel (runner/ddp.py), for messages."""
    return ", ".join(k.name for k in KINDS.values() if k.data_parallel)


def scores() -> dict[str, Score]:
    """Every score some kind's runs get, by key: the one place a score's direction is declared."""
    return {s.key: s for k in KINDS.values() for s in k.scores}


__all__ = ["KINDS", "get_kind", "data_parallel_kinds", "scores", "ExperimentKind", "Runtime", "Score"]

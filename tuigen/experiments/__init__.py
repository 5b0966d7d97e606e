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


__all__ = ["KINDS", "get_kind", "ExperimentKind", "Runtime", "Score"]

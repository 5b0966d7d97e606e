"""What an experiment kind is, and the knobs every training kind shares.

Kind modules declare their config at import time without torch (the CLI and the TUI read
configs to build flags and forms); the training function is imported only in the worker.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..config import knob
from ..data.catalog import DatasetError, check_dataset_spec


@dataclass(frozen=True)
class Score:
    """A metric a leaderboard ranks runs by."""

    key: str
    higher_is_better: bool
    label: str = ""


@dataclass(frozen=True)
class ExperimentKind:
    name: str
    config: type
    entry: str  # "module:function" of run(cfg, ctx), imported in the worker only
    summary: str
    scores: tuple[Score, ...] = ()
    demo: tuple[dict, ...] = ()  # small real configs for `tuigen demo`
    resumable: bool = True
    uses_torch: bool = True
    progress_metric: str = "loss"  # the number `--follow` and the runs table show
    data_parallel: bool = False  # trains on several processes (runner/ddp.py) when resources ask for them

    def load(self) -> Callable[[Any, Any], Any]:
        module, func = self.entry.split(":")
        return getattr(importlib.import_module(module), func)


def any_dataset(spec: str) -> str | None:
    """Rule for a `dataset` knob: a built-in name or folder:PATH."""
    try:
        check_dataset_spec(spec)
    except DatasetError as e:
        return str(e)
    return None


def labelled_dataset(spec: str) -> str | None:
    """Rule for a `dataset` knob of kinds that need labels."""
    try:
        check_dataset_spec(spec, labelled=True)
    except DatasetError as e:
        return str(e)
    return None


def device_rule(v: str) -> str | None:
    if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()) or v == "mps":
        return None
    return f"expected auto, cpu, cuda or cuda:N, got {v!r}"


@dataclass
class Runtime:
    """Knobs every training kind has; they come last in --help."""

    seed: int = knob(0, "random seed for weights, batches and sampling", ge=0, group="runtime")
    device: str = knob("auto", "auto (a GPU when there is one), cpu, cuda or cuda:N", check=device_rule,
                       group="runtime")
    precision: str = knob("auto", "mixed precision: auto (GPU: bf16 where supported, else fp16; CPU: fp32), "
                          "fp32, bf16 (also on CPU), fp16 (GPU only)", choices=("auto", "fp32", "bf16", "fp16"),
                          group="runtime")

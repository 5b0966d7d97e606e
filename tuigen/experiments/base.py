"""What an experiment kind is, and the knobs every training kind shares.

Kind modules declare their config at import time without torch (the CLI and the TUI read
configs to build flags and forms); the training function is imported only in the worker.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, runtime_checkable

from ..config import knob
from ..data.catalog import DatasetError, check_dataset_spec


@dataclass(frozen=True)
class Score:
    """A score a kind's runs get (stored with its provenance), which leaderboards rank runs by.
    Its direction is declared here and nowhere else."""

    key: str
    higher_is_better: bool
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.key


@runtime_checkable
class RunContext(Protocol):
    """What a kind's training function `run(cfg, ctx)` may use of its context (runner/context.py's
    Context, and the data-parallel ranks' contexts, meet it)."""

    run_id: int
    run_dir: Path
    step: int  # the step being run; set by steps()
    rank: int  # 0 unless data-parallel
    world_size: int

    @property
    def is_main(self) -> bool: ...  # the process that records (rank 0)

    @property
    def should_stop(self) -> bool: ...  # asked to stop: checkpoint and return

    def steps(self, start: int, total: int) -> Iterator[int]: ...

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def log_image(self, key: str, image: Any, step: int | None = None, **kw: Any) -> Any: ...

    def log_text(self, key: str, text: str, step: int | None = None) -> Any: ...

    def log_artifact(self, kind: str, path: Any, **kw: Any) -> Any: ...

    def event(self, message: str, level: str = "info") -> None: ...

    def add_score(self, metric: str, value: float, provenance: dict, **kw: Any) -> None: ...


@runtime_checkable
class TorchRunContext(RunContext, Protocol):
    """What torch kinds use on top: the device, data parallelism and checkpoints."""

    device: Any

    def wrap_model(self, model: Any) -> Any: ...

    def shard(self, batch: Any) -> Any: ...

    def mean(self, value: Any) -> Any: ...

    def alone(self, work: Any) -> None: ...  # rank 0 runs work(); the other ranks wait for it

    def accumulating(self, net: Any, last: bool) -> Any: ...  # no_sync for all but the last micro-batch

    def save_checkpoint(self, state: dict, step: int | None = None) -> Any: ...

    def load_checkpoint(self, path: Any = None) -> dict | None: ...


FID = Score("fid", higher_is_better=False, label="FID")
KID = Score("kid", higher_is_better=False, label="KID")
ACCURACY = Score("accuracy", higher_is_better=True, label="accuracy")


@dataclass(frozen=True)
class ExperimentKind:
    name: str
    config: type
    entry: str  # "module:function" of its training function run(cfg, ctx), imported in the worker only
    summary: str
    scores: tuple[Score, ...] = ()
    demo: tuple[dict, ...] = ()  # small real configs for `tuigen demo`
    resumable: bool = True
    uses_torch: bool = True
    progress_metric: str = "loss"  # the number `--follow` and the runs table show
    data_parallel: bool = False  # trains on several processes (runner/ddp.py) when resources ask for them
    trained: str = ""  # what its checkpoints hold for sampling: "diffusion" | "gan" (trained/restore.py)

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
                          "fp32, bf16 (also on CPU; refused on a GPU without it), fp16 (loss-scaled; also on CPU, slowly)", choices=("auto", "fp32", "bf16", "fp16"),
                          group="runtime")
    compile: bool = knob(False, "torch.compile the network (ddpm, cond-ddpm, classifier): faster steps after "
                         "minutes of compiling; see bench/train_switches.py --compile", group="runtime")
    nonfinite_steps: int = knob(0, "steps whose loss may be NaN or infinite before the run fails: each is skipped "
                                "(no update, as AMP's loss scaler skips them); 0 fails at the first", ge=0, le=1000,
                                group="runtime")

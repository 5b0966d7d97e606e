"""Torch helpers shared by training kinds: mixed precision, data on the device, batches.
Imported by kinds' run functions only (inside the worker)."""
from __future__ import annotations

import numpy as np
import torch

from ..config import ConfigError


def amp_dtype(precision: str, device: torch.device, bf16_supported: bool | None = None) -> torch.dtype | None:
    """The autocast dtype, or None for fp32.

    'auto' is bf16 on a GPU that has it, fp16 on one that does not, fp32 on the CPU. An explicit
    bf16 or fp16 is kept on every device: the CPU autocasts both (fp16 with a CPU GradScaler:
    slow, but the GPU's code path), and a GPU without bf16 is refused in one line rather than
    failing inside autocast. `bf16_supported` defaults to asking the GPU."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda" and precision != "fp16":
        has_bf16 = gpu_has_bf16() if bf16_supported is None else bf16_supported
        if precision == "bf16" and not has_bf16:
            raise ConfigError("--precision bf16: this GPU has no bf16 support; use --precision fp16 "
                              "(or auto, which picks fp16 here)")
        precision = "bf16" if has_bf16 else "fp16"
    return torch.bfloat16 if precision == "bf16" else torch.float16


def gpu_has_bf16() -> bool:
    """Native bf16 (Ampere and later), not the slow emulation torch also counts."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch without the argument
        return torch.cuda.is_bf16_supported()


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """fp16 needs loss scaling; bf16 and fp32 do not."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A whole (small) dataset onto the device once, through pinned memory on CUDA."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def fast_layout(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """On a GPU, convolutional networks in channels_last (NHWC): what tensor-core convolution
    kernels read without a transpose. Results are the same (a test); on the CPU nothing changes."""
    return module.to(memory_format=torch.channels_last) if device.type == "cuda" else module


def compiled(module: torch.nn.Module, on: bool) -> torch.nn.Module:
    """torch.compile (`--compile`, off by default): the first steps take minutes to compile."""
    return torch.compile(module) if on else module


def refuse_compile(cfg, kind: str) -> None:
    if getattr(cfg, "compile", False):
        raise ConfigError(f"--compile: {kind} does not compile its networks yet; ddpm, cond-ddpm and classifier do")


def adamw(params, device: torch.device, **kw) -> torch.optim.AdamW:
    """AdamW; on a GPU its fused kernel (a few launches for all parameters, not a loop of them)."""
    return torch.optim.AdamW(params, fused=device.type == "cuda", **kw)


def drawn_to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small tensor drawn on the CPU (batch indices, flips: their generator is saved with the
    checkpoint) onto the device without a host sync: a copy from pageable memory waits for the
    GPU's stream, one from pinned memory with non_blocking does not."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def batch_generator(seed: int) -> torch.Generator:
    """Batch order has its own RNG so it can be saved and resumed exactly."""
    return torch.Generator(device="cpu").manual_seed(seed)


def state_of(**parts) -> dict:
    """The checkpoint entries of a trainer's parts (modules, optimizers, scalers, EMA, RNGs), by name.
    The same names given to `restore_state` load them back: one list says what the state is."""
    return {name: part.get_state() if isinstance(part, torch.Generator) else part.state_dict()
            for name, part in parts.items() if part is not None}


def restore_state(state: dict, **parts) -> None:
    """Load each part from `state[name]` (see `state_of`).

    A GradScaler saved while disabled (fp32 / bf16) has an empty state: resuming such a run in
    fp16 starts the scaler afresh, as torch would on a first step."""
    for name, part in parts.items():
        if part is None:
            continue
        value = state[name]
        if isinstance(part, torch.Generator):
            part.set_state(value.cpu())  # loaded onto the device; generators live on the CPU
        elif isinstance(part, torch.amp.GradScaler) and not value:
            continue
        else:
            part.load_state_dict(value)


class NonFiniteLoss(ValueError):
    """The training loss became NaN or infinite: the run stops as failed. The message is one
    line naming the step, for the run's error."""


class LossGuard:
    """Stops a run whose loss turns non-finite, naming the first step it happened at.

    With `allowed` = 0 (the default) nothing is read back per step: the first bad step is kept
    on the device and `check()` reads it where the loop syncs anyway (logging, checkpoints), so
    a run fails before a non-finite loss is logged or a checkpoint of broken weights is saved.
    With `allowed` > 0 each loss is read at once (one host sync a step) and a bad step's update
    is skipped, as AMP's GradScaler skips steps with infinite gradients, until more than
    `allowed` steps were bad."""

    def __init__(self, allowed: int, device: torch.device):
        self.allowed = allowed
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.skipped: list[int] = []

    def update_ok(self, loss: torch.Tensor, step: int) -> bool:
        """Whether this step's update may be applied (always True when nothing may be skipped)."""
        finite = torch.isfinite(loss.detach()).all()
        if not self.allowed:
            self.first_bad = torch.where(finite | (self.first_bad >= 0), self.first_bad, step)
            return True
        if bool(finite):
            return True
        self.skipped.append(step)
        if len(self.skipped) > self.allowed:
            raise NonFiniteLoss(self._message(step, f"; {self.allowed} bad step(s) were allowed and skipped "
                                                    f"(steps {', '.join(map(str, self.skipped[:-1]))})"))
        return False

    def check(self) -> None:
        """Raise NonFiniteLoss if a loss since the start was NaN or infinite (one host sync)."""
        if not self.allowed and (bad := int(self.first_bad)) >= 0:
            raise NonFiniteLoss(self._message(bad, ""))

    @staticmethod
    def _message(step: int, detail: str) -> str:
        return (f"the training loss became NaN or infinite at step {step}{detail}; lower --lr, check the data, "
                "or let a few bad steps be skipped with --nonfinite_steps N")


def report_skipped(ctx, data) -> None:
    """Name each file a folder dataset left out, with its reason, in the run's events (the first
    SHOWN_SKIPPED one by one, then a count): the same files `tuigen fid` of the folder skips."""
    if not data.skipped:
        return
    from ..data.folder import skipped_lines

    ctx.event(f"{data.name}: {len(data.skipped)} file(s) skipped, training on the other {len(data)}", "warning")
    for line in skipped_lines(data.skipped):
        ctx.event(line, "warning")

"""Torch helpers shared by training kinds: mixed precision, data on the device, batches.
Imported by kinds' run functions only (inside the worker)."""
from __future__ import annotations

import numpy as np
import torch


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. 'auto' is bf16 (or fp16) on GPU and fp32 on CPU;
    an explicit bf16 also runs on CPU, where recent CPUs speed it up."""
    if precision == "fp32" or (device.type != "cuda" and precision != "bf16"):
        return None
    if device.type != "cuda":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


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

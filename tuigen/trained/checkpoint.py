"""Checkpoint files: checkpoints that survive a crash mid-write and load without running pickled code.

Written with files.atomic_write (temp file, fsync, os.replace), so a reader sees the old file
or the new one, never half of one. Loaded with weights_only=True:
everything we save is tensors, numbers, strings, lists, tuples and dicts.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TuigenError
from ..files import atomic_write


class CheckpointError(TuigenError, RuntimeError):
    """A checkpoint that cannot be read or written; the message names the file."""


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_write(path, durable=True) as f:
            torch.save(obj, f)
    except OSError as e:  # e.g. a full disk: say which checkpoint; the previous one is untouched
        raise CheckpointError(f"could not write checkpoint {path}: {e.strerror or e}") from e
    return path


def load(path: str | Path, map_location: Any = "cpu") -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why, never guess
        reason = str(e).split(". ")[0]  # torch appends a paragraph of advice
        raise CheckpointError(f"checkpoint {path} could not be loaded ({type(e).__name__}: {reason}); "
                              "it is damaged or not a tuigen checkpoint") from e


def capture_rng() -> dict:
    """Every RNG a training step may draw from, in a weights_only-loadable form."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    v, internal, gauss_next = state["python"]
    random.setstate((v, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(cuda_states_to_restore(state["cuda"], torch.cuda.device_count())):
            torch.cuda.set_rng_state(cuda_state, index)


def cuda_states_to_restore(saved: list, visible: int) -> list:
    """The saved CUDA RNG states of the devices this process has: a run saved with 4 GPUs
    visible and resumed with 1 restores the first (its own: the run trains on cuda:0), not an
    IndexError; one saved with fewer leaves the extra devices' generators as they are."""
    return list(saved[:visible])

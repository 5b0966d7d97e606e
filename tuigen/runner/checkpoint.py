"""Checkpoints that survive a crash mid-write and load without running pickled code.

Written to a temp file in the same folder, fsynced, then os.replace'd over the target, so a
reader sees the old file or the new one, never half of one. Loaded with weights_only=True:
everything we save is tensors, numbers, strings, lists, tuples and dicts.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TuigenError


class CheckpointError(TuigenError, RuntimeError):
    """A checkpoint that cannot be read or written; the message names the file."""


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # e.g. a full disk: say which checkpoint; the previous one is untouched
        raise CheckpointError(f"could not write checkpoint {path}: {e.strerror or e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path, map_location: Any = "cpu") -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why, never guess
        reason = str(e).split(". ")[0]  # torch appends a paragraph of advice
        raise CheckpointError(f"checkpoint {path} could not be loaded ({type(e).__name__}: {reason}); "
                              "it is damaged or not a tuigen checkpoint") from e


def clean_temp_files(folder: str | Path) -> int:
    """Remove temp files left by a process killed mid-write."""
    n = 0
    for p in Path(folder).glob(".*.tmp-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


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
        torch.cuda.set_rng_state_all(state["cuda"])

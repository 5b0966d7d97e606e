"""tuigen's environment variables, each read and checked in one place.

A value that is not a number in range is an InputError naming the variable (exit 2 at the
command line, before anything is queued), never a traceback deep inside a worker.
"""
from __future__ import annotations

import math
import os

from .errors import InputError


def _number(name: str, default: float, kind: type, lo: float, hi: float, unit: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(float(raw)) if kind is float else int(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not lo <= value <= hi:
        noun = "a whole number" if kind is int else "a number"
        raise InputError(f"{name} must be {noun}{unit} from {lo:g} to {hi:g}, got {raw!r}")
    return value


def busy_timeout_s() -> float:
    """How long a store write waits for another process's lock before it counts as busy."""
    return _number("TUIGEN_BUSY_TIMEOUT", 30.0, float, 0, 86400, " of seconds")


def heartbeat_timeout_s() -> float:
    """Silence after which a run on another host (or in Slurm) is marked unknown."""
    return _number("TUIGEN_HEARTBEAT_TIMEOUT", 300.0, float, 1, 10 ** 7, " of seconds")


def slots() -> int | None:
    """TUIGEN_SLOTS: how many runs this host runs at once (None: one per GPU, or per two cores)."""
    value = _number("TUIGEN_SLOTS", 0, int, 0, 4096, "")
    return value or None


def threads() -> int | None:
    """TUIGEN_THREADS: torch threads of a worker (None: its share of the cores)."""
    value = _number("TUIGEN_THREADS", 0, int, 0, 4096, "")
    return value or None


def fake_gpus() -> int | None:
    """TUIGEN_FAKE_GPUS: a test hook. The GPU count NVML would report (None: ask NVML), so the
    queue and the launch checks can be tested on a machine without GPUs."""
    raw = os.environ.get("TUIGEN_FAKE_GPUS", "").strip()
    return int(_number("TUIGEN_FAKE_GPUS", 0, int, 0, 64, "")) if raw else None


GPUS_ENV = "TUIGEN_GPUS"


def count_syncs() -> bool:
    """TUIGEN_COUNT_SYNCS=1: a worker counts host syncs per training step (runner/syncs.py)."""
    return os.environ.get("TUIGEN_COUNT_SYNCS", "").strip() not in ("", "0")


def gpu_mask() -> list[str] | None:
    """The physical GPUs (indices, or GPU-/MIG- UUIDs) this machine's queue may hand out, as
    TUIGEN_GPUS or else the user's own CUDA_VISIBLE_DEVICES names them; None: all of them.
    Workers get TUIGEN_GPUS from the launcher: their own CUDA_VISIBLE_DEVICES is their one GPU."""
    raw = os.environ.get(GPUS_ENV)
    if raw is None:
        raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None or raw.strip() == "all":
        return None
    out = []
    for token in (t.strip() for t in raw.split(",")):
        if not token or token.startswith("-"):  # CUDA stops at the first invalid entry ("-1": none)
            break
        out.append(token)
    return out


def ddp_timeout_s() -> float | None:
    """TUIGEN_DDP_TIMEOUT: seconds a data-parallel rank waits in a training collective (None:
    torch's default). Rank 0's previews and FID are waited for outside it (runner/ddp_context.py)."""
    return _number("TUIGEN_DDP_TIMEOUT", 0, float, 0, 10 ** 6, " of seconds") or None


def store_retry_s() -> float:
    """How long a finishing worker keeps retrying a busy store before it gives up on a write."""
    return _number("TUIGEN_STORE_RETRY", 3600.0, float, 0, 10 ** 7, " of seconds")


IMAGE_PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")


def image_protocol() -> str:
    value = (os.environ.get("TUIGEN_IMAGES") or "auto").strip().lower()
    if value not in IMAGE_PROTOCOLS:
        raise InputError(f"TUIGEN_IMAGES must be one of {', '.join(IMAGE_PROTOCOLS)}, got {value!r}")
    return value


def check_environment() -> None:
    """Every variable at once, at the start of a command: a bad one stops it before it acts."""
    busy_timeout_s(), heartbeat_timeout_s(), slots(), threads(), store_retry_s(), image_protocol(), fake_gpus(), ddp_timeout_s()

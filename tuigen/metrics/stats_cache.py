"""On-disk cache of Inception features and FID statistics: .npz files (never pickle), atomic writes.

Entries live in ``<cache>/fid/`` where ``<cache>`` is ``$TUIGEN_CACHE`` or ``~/.cache/tuigen``:

- ``feats-<key>.npz``: ``features`` (N, 2048) float32, ``mu`` (2048,) float32,
  ``sigma`` (2048, 2048) float32, and the ``identity`` / ``version`` strings they were made
  from. ``<key>`` hashes the image-set identity and the extractor version, so changing the
  weights, the input scaling or the images simply misses.
- ``result-<key>.npz``: FID/KID of a pair of entries (so an identical repeat costs only hashing).

Writes go to a temp file in the same folder and are ``os.replace``d: readers see no file or a
whole one. A failed write (read-only or full disk) is swallowed: it only costs time later.
A damaged or mismatching entry reads as a miss.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..files import atomic_write


def cache_dir() -> Path:
    """``$TUIGEN_CACHE/fid`` or ``~/.cache/tuigen/fid`` (read on every call, so tests can redirect it)."""
    root = os.environ.get("TUIGEN_CACHE") or Path.home() / ".cache" / "tuigen"
    return Path(root).expanduser() / "fid"


def entry_key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def features_file(identity: str, version: str) -> Path:
    return cache_dir() / f"feats-{entry_key('features', identity, version)}.npz"


def result_file(key_a: str, key_b: str, params: str) -> Path:
    return cache_dir() / f"result-{entry_key('result', key_a, key_b, params)}.npz"


def save_npz(path: Path, **arrays: np.ndarray) -> bool:
    """Atomically write ``arrays`` to ``path``; False (and no file) when the write fails."""
    try:
        with atomic_write(path) as handle:  # a file object stops np.savez appending ".npz"
            np.savez(handle, **arrays)
        return True
    except OSError:
        return False


def load_npz(path: Path, **expected_strings: str) -> dict[str, np.ndarray] | None:
    """All arrays of ``path``, or None when missing, unreadable, or a stored string differs from expected."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception:  # truncated, foreign or damaged file: a miss
        return None
    for name, value in expected_strings.items():
        if name not in arrays or str(arrays[name]) != value:
            return None
    return arrays


def save_features(identity: str, version: str, features: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> bool:
    return save_npz(features_file(identity, version), features=features.astype(np.float32, copy=False),
                    mu=mu.astype(np.float32, copy=False), sigma=sigma.astype(np.float32, copy=False),
                    identity=np.array(identity), version=np.array(version))


def load_features(identity: str, version: str, n: int | None = None) -> dict[str, np.ndarray] | None:
    """The cached entry (features, mu, sigma) or None; ``n`` guards against a reused identity string."""
    arrays = load_npz(features_file(identity, version), identity=identity, version=version)
    if arrays is None or not {"features", "mu", "sigma"} <= set(arrays):
        return None
    feats = arrays["features"]
    if feats.ndim != 2 or (n is not None and len(feats) != n) or arrays["sigma"].shape != (feats.shape[1],) * 2:
        return None
    return arrays

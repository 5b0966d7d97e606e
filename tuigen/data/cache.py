"""On-disk cache of prepared datasets as .npz files (never pickle), written atomically.

Preparing a dataset (decoding, resizing, rendering) costs seconds; loading the
prepared arrays back costs milliseconds. Each entry is keyed by dataset, size,
channels and DATA_VERSION, so changing any of them simply misses the cache.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .core import ImageDataset

# Bump whenever a loader's output changes, so stale cache entries are never reused.
DATA_VERSION = 2  # 2: skipped files named with their reasons; folders keyed by content


def cache_root(cache_dir: str | Path | None) -> Path:
    """The data cache folder: ``<cache_dir>/data``, cache_dir defaulting to $TUIGEN_CACHE or ~/.cache/tuigen."""
    if cache_dir is None:
        cache_dir = os.environ.get("TUIGEN_CACHE") or Path.home() / ".cache" / "tuigen"
    return Path(cache_dir).expanduser() / "data"


def cache_file(cache_dir: str | Path | None, name: str, size: int, channels: int, extra: str = "") -> Path:
    """Where the entry for these parameters lives; ``extra`` (a folder's fingerprint) is hashed in."""
    stem = f"{name}-s{size}-c{channels}-v{DATA_VERSION}"
    if extra:
        stem += "-" + hashlib.sha256(extra.encode()).hexdigest()[:16]
    return cache_root(cache_dir) / f"{stem}.npz"


def save(path: Path, dataset: ImageDataset) -> None:
    """Write atomically: concurrent loaders see either no file or a complete one.

    A failed write (read-only or full disk) only costs the next load some time,
    so it is swallowed rather than failing the load that just succeeded.
    """
    arrays = {
        "images": dataset.images,
        "label_kind": np.array(dataset.label_kind),
        "class_names": np.array(dataset.class_names, dtype=str),
        "skipped_files": np.array([f for f, _ in dataset.skipped], dtype=str),
        "skipped_reasons": np.array([why for _, why in dataset.skipped], dtype=str),
    }
    if dataset.labels is not None:
        arrays["labels"] = dataset.labels
    try:
        with atomic_write(path) as handle:  # a file object stops np.savez appending ".npz"
            np.savez(handle, **arrays)
    except OSError:
        pass


def load(path: Path, name: str) -> ImageDataset | None:
    """The cached dataset, or None when missing or unreadable (a damaged entry is just rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return ImageDataset(
                name=name,
                images=data["images"],
                labels=data["labels"] if "labels" in data.files else None,
                label_kind=str(data["label_kind"]),
                class_names=[str(c) for c in data["class_names"]],
                skipped=[(str(f), str(why)) for f, why in zip(data["skipped_files"], data["skipped_reasons"])],
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None

"""The in-memory dataset type shared by every loader, plus progress throttling."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .catalog import DatasetError

Progress = Callable[[int, int], None]
LABEL_KINDS = ("class", "multi", "none")


@dataclass
class ImageDataset:
    """Images as uint8 (N, C, H, W) with optional labels.

    ``labels`` is int64 (N,) class indices for label_kind "class", float32 (N, K)
    multi-hot for "multi", and None for "none". ``skipped`` names the files left out
    while loading the source, each with its reason (folders only). ``source`` identifies
    the pixels' origin by content: the built-in's name, or a folder's fingerprint.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray | None
    label_kind: str
    class_names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file relative to the folder, reason)
    source: str = ""

    def __post_init__(self) -> None:
        # Catch loader bugs at the boundary instead of deep inside a training loop.
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1] not in (1, 3):
            raise DatasetError(f"dataset {self.name!r}: images must be uint8 (N, 1|3, H, W), "
                               f"got {self.images.dtype} {self.images.shape}")
        if self.label_kind not in LABEL_KINDS:
            raise DatasetError(f"dataset {self.name!r}: unknown label kind {self.label_kind!r}")
        if (self.labels is None) != (self.label_kind == "none"):
            raise DatasetError(f"dataset {self.name!r}: labels do not match label kind {self.label_kind!r}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DatasetError(f"dataset {self.name!r}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def subset(self, indices: np.ndarray) -> "ImageDataset":
        labels = None if self.labels is None else self.labels[indices]
        return replace(self, images=self.images[indices], labels=labels)

    def split(self, val_fraction: float, seed: int) -> tuple["ImageDataset", "ImageDataset"]:
        """Deterministic random (train, val) split; both halves keep the original order."""
        if not 0.0 <= val_fraction < 1.0:
            raise DatasetError(f"dataset {self.name!r}: val_fraction must be in [0, 1), got {val_fraction}")
        n = len(self)
        n_val = round(n * val_fraction)
        if val_fraction > 0:
            n_val = min(max(n_val, 1), n - 1)  # a requested split is never silently empty
        order = np.random.default_rng(seed).permutation(n)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        return self.subset(train_idx), self.subset(val_idx)


def throttled(progress: Progress | None, total: int) -> Callable[[int], None]:
    """A ``tick(done)`` that forwards about 100 updates, so a UI callback never dominates a loop."""
    if progress is None:
        return lambda done: None
    step = max(1, total // 100)

    def tick(done: int) -> None:
        if done % step == 0 or done == total:
            progress(done, total)

    return tick

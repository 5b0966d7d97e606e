"""Metric errors, importable without torch (so a CLI can catch them cheaply)."""

from __future__ import annotations


class FIDError(RuntimeError):
    """FID/KID cannot be computed (or the extractor cannot be built); the message says why and what to do."""

"""Metric errors, importable without torch (so a CLI can catch them cheaply)."""

from __future__ import annotations

from ..errors import TuigenError


class FIDError(TuigenError, RuntimeError):
    """FID/KID cannot be computed (or the extractor cannot be built); the message says why and what to do.
    A TuigenError, so the CLI prints it as one line (exit 1), not a traceback."""

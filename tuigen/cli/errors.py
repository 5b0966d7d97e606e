"""The CLI's own error: bad input on the command line (exit code 2)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input: exit code 2."""

"""The CLI's own error: bad input on the command line (exit code 2)."""
from __future__ import annotations

from ..errors import InputError


class UsageError(InputError):
    """Bad input: exit code 2."""

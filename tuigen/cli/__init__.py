"""The `tuigen` command. Exit codes: 0 success, 1 failure, 2 bad usage."""
from __future__ import annotations

import sys

from .main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

"""Errors whose message is already one sentence for a person: the CLI prints it as one line
(exit 1) instead of a traceback. Importable without torch or SQLAlchemy."""
from __future__ import annotations


class TuigenError(Exception):
    """A failure outside the user's command line (a damaged file, a locked or full store);
    the message names the file and what is wrong with it."""

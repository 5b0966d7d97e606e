"""Errors whose message is already one sentence for a person: the CLI prints it as one line
instead of a traceback. Importable without torch or SQLAlchemy."""
from __future__ import annotations


class TuigenError(Exception):
    """A failure outside the user's command line (a damaged file, a locked or full store);
    the message names the file and what is wrong with it. Exit code 1."""


class InputError(ValueError):
    """Something the user asked for cannot work (a flag, a value, a dataset, an environment
    variable); the message names it and what was expected. Exit code 2 at the command line; a
    run that fails of it stores this one line as its error (the traceback goes to its log)."""

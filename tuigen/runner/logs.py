"""A run's output.log: where it is, its last lines, and following it as it grows.

The one module that knows the file's name. Readers go from the end of the file, so their memory
is bounded by what they show, never by the size of the log.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

LOG_NAME = "output.log"
BLOCK = 65536


def log_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOG_NAME


def tail_lines(path: str | Path, lines: int) -> list[str]:
    """The last `lines` lines of a file (all when lines is 0), reading blocks from its end."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            end = f.tell()
            if not lines:
                f.seek(0)
                return f.read().decode("utf-8", "replace").splitlines()
            chunks, pos, newlines = [], end, 0
            while pos > 0 and newlines <= lines:
                size = min(BLOCK, pos)
                pos -= size
                f.seek(pos)
                chunk = f.read(size)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except OSError:
        return []
    text = b"".join(reversed(chunks)).decode("utf-8", "replace")
    return text.splitlines()[-lines:]


def tail(run_dir: str | Path, lines: int = 20) -> str:
    """The last lines of a run's log as one string ('' when it has none)."""
    return "\n".join(tail_lines(log_path(run_dir), lines))


def read_from(path: str | Path, offset: int | None, max_bytes: int = BLOCK) -> tuple[str, int]:
    """Text of a log from byte `offset` on (None: only its last `max_bytes`), at most
    16 x max_bytes per call, and the offset to continue from. A file that shrank (replaced or
    truncated) is read again from its last `max_bytes`."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            start = max(0, size - max_bytes) if offset is None or size < offset else offset
            f.seek(start)
            data = f.read(min(size - start, max_bytes * 16))
        return data.decode("utf-8", "replace"), start + len(data)
    except OSError:
        return "", offset or 0


def follow(path: str | Path, still_going: Callable[[], bool], poll_s: float = 0.3) -> Iterator[str]:
    """Text appended to `path` from now on, until `still_going()` says the writer is done."""
    try:
        offset = Path(path).stat().st_size
    except OSError:
        offset = 0
    while True:
        text, offset = read_from(path, offset)
        if text:
            yield text
        elif not still_going():
            return
        else:
            time.sleep(poll_s)

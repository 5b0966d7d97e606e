"""Writing a file so that a reader sees the old one or the new one, never half of one.

Every file tuigen writes for another process to read (checkpoints, pictures, caches, results)
goes through `atomic_write`: a temp file in the same folder, then `os.replace` over the target.
Standard library only: every layer may use it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

TEMP_MARK = ".tmp-"  # temp files are ".<name>.tmp-<random>", so a crash's leftovers can be found


@contextmanager
def atomic_write(path: str | Path, *, durable: bool = False, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file object whose contents replace `path` when the block ends without error.

    `durable` fsyncs the file and its folder (checkpoints: they must survive a power cut).
    On any error the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes, **kw) -> Path:
    with atomic_write(path, **kw) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, **kw) -> Path:
    return write_bytes(path, text.encode(), **kw)


def clean_temp_files(folder: str | Path) -> int:
    """Remove the temp files of writes that a killed process left behind."""
    n = 0
    for p in Path(folder).glob(f".*{TEMP_MARK}*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

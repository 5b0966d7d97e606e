"""Which store and which run a run folder belongs to, and who is asking.

Every run folder carries a marker, `.tuigen-run.json`, naming its store (a UUID kept in the
database) and its run (id and UUID). tuigen acts on a folder — runs in it, resumes from it,
samples from it, shows its log, deletes it — only when the marker matches the run; a folder that
was already there, or that belongs to another store, is never adopted and never deleted.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

from ..errors import TuigenError

MARKER = ".tuigen-run.json"
HOST = socket.gethostname()


def current_user() -> str:
    """The account tuigen runs as (a uid where there is no name for it, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises OSError/KeyError without a passwd entry
        return f"uid{os.getuid()}"


class RunFolderError(TuigenError):
    """A run's folder is missing, or is not this run's; the message names the folder."""


def folder_name(run_id: int, run_uuid: str) -> str:
    """runs/<id>-<first 8 of the uuid>: readable, and never the same for two stores or runs."""
    return f"{run_id}-{run_uuid[:8]}"


def claim_folder(path: Path, store_id: str, run_id: int, run_uuid: str) -> bool:
    """Make a new run folder with its marker; False if the path already exists (never adopted)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        return False
    with open(path / MARKER, "x") as f:
        json.dump({"store": store_id, "run": run_id, "uuid": run_uuid}, f)
    return True


def marker_problem(run_dir: str | Path, store_id: str, run_id: int, run_uuid: str) -> str | None:
    """Why `run_dir` is not this run's folder, or None when its marker matches."""
    path = Path(run_dir)
    if path.is_symlink():
        return f"{path} is a symbolic link, not the folder tuigen made for run {run_id}"
    if not path.is_dir():
        return f"run {run_id}'s folder {path} is missing"
    try:
        marker = json.loads((path / MARKER).read_text())
    except FileNotFoundError:
        return f"{path} has no tuigen marker: it was not made for run {run_id} of this store"
    except (OSError, ValueError) as e:
        return f"{path}/{MARKER} cannot be read ({e})"
    if not isinstance(marker, dict) or marker.get("store") != store_id:
        return f"{path} belongs to another store (its marker names store {marker.get('store') if isinstance(marker, dict) else '?'})"
    if marker.get("run") != run_id or marker.get("uuid") != run_uuid:
        return f"{path} belongs to run {marker.get('run')} of this store, not run {run_id}"
    return None

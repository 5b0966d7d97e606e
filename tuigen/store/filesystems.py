"""Is a SQLite file on a network filesystem? There WAL mode is unsafe: its shared-memory index
and byte-range locks are not coherent across hosts, so two machines writing one runs.db can
corrupt it (sqlite.org/wal.html, "all processes ... must be on the same host").

We read the kernel's mount table rather than guess from the path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Filesystem types (mountinfo's "fstype", fuse subtypes included) that span hosts.
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "coda", "9p", "ceph", "glusterfs",
    "lustre", "gpfs", "beegfs", "orangefs", "pvfs2", "ocfs2", "gfs2", "fuse.sshfs", "fuse.glusterfs",
    "fuse.cephfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs", "fuse.rclone", "fuse.beegfs",
})
ALLOW_ENV = "TUIGEN_ALLOW_NETWORK_SQLITE"
MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field  # "\040" is a space


def mounts(mountinfo: str | None = None) -> list[Mount]:
    """The mount table (empty where there is none, e.g. not Linux)."""
    try:
        lines = Path(mountinfo or MOUNTINFO).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt/point rw,noatime master:1 - nfs4 host:/export rw,..."
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and len(tail) >= 2:
            out.append(Mount(_unescape(fields[4]), tail[0], tail[1]))
    return out


def mount_of(path: str | os.PathLike, table: list[Mount] | None = None) -> Mount | None:
    """The mount holding `path` (the longest mount point that is a prefix of it)."""
    real = os.path.realpath(path)
    best = None
    for m in table if table is not None else mounts():
        inside = real == m.point or real.startswith(m.point.rstrip("/") + "/")
        if inside and (best is None or len(m.point) >= len(best.point)):
            best = m  # later entries of the same point shadow earlier ones
    return best


def network_mount(path: str | os.PathLike, table: list[Mount] | None = None) -> Mount | None:
    m = mount_of(path, table)
    return m if m and m.fstype in NETWORK_TYPES else None


class NetworkFilesystemError(Exception):
    """A SQLite store on a network filesystem, not forced."""


def check_sqlite_location(db_file: str | os.PathLike, table: list[Mount] | None = None) -> str | None:
    """Refuse a SQLite file on a network filesystem unless TUIGEN_ALLOW_NETWORK_SQLITE=1;
    returns a warning to show when forced, None when the location is local."""
    folder = Path(db_file).parent
    m = network_mount(folder, table)
    if m is None:
        return None
    problem = (f"{db_file} is on a network filesystem ({m.fstype} {m.source} at {m.point}); SQLite's "
               f"write-ahead log is not safe there when runs on other hosts write to it")
    if os.environ.get(ALLOW_ENV) == "1":
        return f"warning: {problem}. Continuing because {ALLOW_ENV}=1."
    raise NetworkFilesystemError(
        f"{problem}. Use a shared PostgreSQL store instead (--db postgresql://USER@HOST/DB), put "
        f"runs.db on a local disk, or pass --allow-network-sqlite (or set {ALLOW_ENV}=1) to use it anyway.")

"""A SQLite store on a network filesystem is refused (WAL is unsafe there) unless forced."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tuigen.store import filesystems
from tuigen.store.filesystems import NetworkFilesystemError, check_sqlite_location, mount_of, mounts


def fake_mountinfo(tmp_path: Path, nfs_point: Path) -> Path:
    """This machine's real mount table plus an NFS mount at nfs_point (as the kernel writes it)."""
    real = Path("/proc/self/mountinfo").read_text()
    line = f"999 1 0:99 / {str(nfs_point).replace(' ', chr(92) + '040')} rw,relatime shared:9 - nfs4 fileserver:/export/home rw,vers=4.2\n"
    path = tmp_path / "mountinfo"
    path.write_text(real + line)
    return path


def test_the_real_mount_table_finds_local_folders_local(tmp_path):
    table = mounts()
    assert any(m.point == "/" for m in table)
    here = mount_of(tmp_path, table)
    assert here is not None and str(tmp_path).startswith(here.point.rstrip("/") + "/")
    assert check_sqlite_location(tmp_path / "runs.db", table) is None


def test_a_store_on_nfs_is_refused_with_the_way_out(tmp_path, monkeypatch):
    share = tmp_path / "lab share"  # a space: mountinfo escapes it as \040
    share.mkdir()
    table = mounts(str(fake_mountinfo(tmp_path, share)))
    assert mount_of(share / "sub" / "runs.db", table).fstype == "nfs4"
    with pytest.raises(NetworkFilesystemError) as e:
        check_sqlite_location(share / "runs.db", table)
    msg = str(e.value)
    assert "nfs4 fileserver:/export/home" in msg and "postgresql://" in msg and "--allow-network-sqlite" in msg
    assert check_sqlite_location(tmp_path / "elsewhere.db", table) is None  # the parent mount is local

    monkeypatch.setenv(filesystems.ALLOW_ENV, "1")
    assert check_sqlite_location(share / "runs.db", table).startswith("warning:")


def test_the_cli_refuses_then_obeys_the_flag(cli, tmp_path, monkeypatch):
    share = tmp_path / "nfs"
    share.mkdir()
    monkeypatch.setattr(filesystems, "MOUNTINFO", str(fake_mountinfo(tmp_path, share)))
    db = share / "runs.db"
    code, out, err = cli("--db", str(db), "ls")
    assert code == 2 and "network filesystem" in err and "Traceback" not in err
    assert not db.exists()  # refused before SQLite touched it

    monkeypatch.delenv(filesystems.ALLOW_ENV, raising=False)
    code, out, err = cli("--db", str(db), "--allow-network-sqlite", "ls", "--json")
    assert code == 0 and json.loads(out) == [] and "warning:" in err
    assert os.environ[filesystems.ALLOW_ENV] == "1"  # inherited by the workers it starts

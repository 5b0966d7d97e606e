"""Credentials stay secret (issue 11): a PostgreSQL password in the store URL never appears in
argv (`ps`), in the files tuigen writes, in logs, errors or --json."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from conftest import wait_for

PASSWORD = "s3cret-Pw-4711"
SLEEPY = "import time\nfor i in range(1, 40):\n    print(f'step={i} loss={1 / i}', flush=True)\n    time.sleep(0.1)\n"


@pytest.fixture
def secret_url(pg_server, tmp_path, monkeypatch):
    """A database owned by a role with a password; the URL carries it."""
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql('DROP DATABASE IF EXISTS "t_secrets" WITH (FORCE)')
        c.exec_driver_sql("DROP ROLE IF EXISTS secret_user")
        c.exec_driver_sql(f"CREATE ROLE secret_user LOGIN PASSWORD '{PASSWORD}'")
        c.exec_driver_sql('CREATE DATABASE "t_secrets" OWNER secret_user')
    admin.dispose()
    url = make_url(pg_server).set(username="secret_user", password=PASSWORD, database="t_secrets")
    text = url.render_as_string(hide_password=False)
    monkeypatch.delenv("TUIGEN_DB")
    monkeypatch.setenv("TUIGEN_RUNS_DIR", str(tmp_path / "runs"))
    yield text


def tuigen(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuigen", "--db", url, *args], capture_output=True, text=True,
                          timeout=120)


def test_a_password_never_leaks(secret_url, tmp_path):
    from tuigen.store import Store

    launched = tuigen(secret_url, "exec", "--json", "--", sys.executable, "-c", SLEEPY)
    assert launched.returncode == 0, launched.stderr
    run = json.loads(launched.stdout)
    store = Store(secret_url)
    wait_for(lambda: store.get_run(run["id"]).step >= 2, what="the run to log")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    workers = [line for line in ps.splitlines() if "tuigen.runner.worker" in line]
    assert workers and not any(PASSWORD in line for line in workers)
    wait_for(lambda: store.get_run(run["id"]).status == "completed", timeout=90, what="the run to finish")

    outputs = [launched.stdout, launched.stderr]
    for args in (("ls",), ("ls", "--json"), ("show", str(run["id"])), ("show", str(run["id"]), "--json"),
                 ("logs", str(run["id"])), ("export", str(run["id"]), "--format", "json"), ("show", "999"),
                 ("board", "--metric", "nope")):
        done = tuigen(secret_url, *args)
        outputs += [done.stdout, done.stderr]
    assert "no run with id 999" in " ".join(outputs) and "secret_user:***@" in " ".join(outputs)
    assert not any(PASSWORD in text for text in outputs)
    for f in Path(tmp_path / "runs").rglob("*"):  # every file tuigen wrote for the run
        if f.is_file():
            assert PASSWORD not in f.read_text(errors="replace"), f
    row = store.get_run(run["id"])
    assert PASSWORD not in json.dumps({c: str(getattr(row, c)) for c in ("config", "command", "error", "resources")})

"""Shared fixtures: a private store per test, the CLI in-process, and polling helpers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuigen.cli import main
from tuigen.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(request, tmp_path, monkeypatch):
    """Each test gets its own runs.db and runs/ folder; queued runs get 2 slots."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUIGEN_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.delenv("TUIGEN_RUNS_DIR", raising=False)
    monkeypatch.setenv("TUIGEN_SLOTS", "2")
    yield
    _kill_leftover_workers(getattr(request.node, "tuigen_db", None), tmp_path)


def _kill_leftover_workers(url: str | None, tmp_path: Path) -> None:
    """A failing test must not leave workers training in the background (on the store it used:
    the db_url fixture records a PostgreSQL one on the test item)."""
    if url is None:
        if not (tmp_path / "runs.db").exists():
            return
        url = f"sqlite:///{tmp_path / 'runs.db'}"
    import signal

    s = Store(url)
    for run in s.list_runs(status=["starting", "running"]):
        if run.pid and run.executor == "local":
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    s.close()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """A real PostgreSQL server on loopback for this test session (scripts/services/postgres.sh);
    its admin URL. Set TUIGEN_TEST_PG to use a server of your own instead."""
    if os.environ.get("TUIGEN_TEST_PG"):
        yield os.environ["TUIGEN_TEST_PG"]
        return
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="tuigen-pg-")  # not under pytest's root-only tmp: postgres owns it
    script = ROOT / "scripts" / "services" / "postgres.sh"
    done = subprocess.run(["bash", str(script), str(folder)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.skip(f"PostgreSQL could not start: {done.stderr.strip() or done.stdout.strip()}")
    yield done.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", str(script), "--stop", str(folder)], capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def _fresh_pg_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch) -> str:
    """A new, empty store on each backend; TUIGEN_DB points at it so workers and CLI calls
    started by the test open the same one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        admin = request.getfixturevalue("pg_server")
        url = _fresh_pg_database(admin, "t_" + re.sub(r"\W", "_", request.node.name.lower())[:50])
    monkeypatch.setenv("TUIGEN_DB", url)
    request.node.tuigen_db = url
    return url


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and threads spin-wait when the cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def backend_store(db_url) -> Store:
    """The store of db_url: for tests of the run lifecycle on SQLite and on PostgreSQL."""
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'runs.db'}")
    yield s
    s.close()


@pytest.fixture
def cli(capsys):
    """Run `tuigen ARGS` in this process; returns (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            code = e.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_status(store: Store, run_id: int, statuses, timeout: float = 90.0):
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    run = wait_for(lambda: (r := store.get_run(run_id)).status in statuses and r, timeout,
                   what=f"run {run_id} to reach {statuses}")
    return run


def python(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def run_in_context(train, store, cfg, run, ctx_hook=None, *, start: bool = True):
    """Call a kind's train(cfg, ctx) in this process with a real TorchContext on CPU: the
    worker's code path without the registry (for kinds tested before they are registered)."""
    import torch

    from tuigen.runner.context import TorchContext

    ctx = TorchContext(store, run.id, run.run_dir, cfg, device=torch.device("cpu"))
    if ctx_hook:
        ctx_hook(ctx)
    if start:
        ctx.start()
    try:
        train(cfg, ctx)
    finally:
        ctx.close()
    return ctx


def curves(store, run_id) -> dict[str, dict[int, float]]:
    """{metric: {step: value}} of a run, to compare two runs' curves."""
    out: dict[str, dict[int, float]] = {}
    for p in store.metrics(run_id):
        out.setdefault(p.key, {})[p.step] = p.value
    return out


def assert_same_curves(store, reference_id: int, run_id: int, ignore=("images_per_s",)) -> None:
    """A resumed run logged exactly the uninterrupted run's points: same keys and steps (no gap,
    no duplicate), same values within float tolerance. Wall-clock metrics are ignored."""
    import pytest

    ref, got = curves(store, reference_id), curves(store, run_id)
    assert set(got) == set(ref)
    for key in set(ref) - set(ignore):
        assert sorted(got[key]) == sorted(ref[key]), key
        for step, v in ref[key].items():
            assert got[key][step] == pytest.approx(v, rel=1e-5, abs=1e-6), (key, step)

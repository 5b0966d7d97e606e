"""Shared fixtures: a private store per test, the CLI in-process, and polling helpers."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuigen.cli import main
from tuigen.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test gets its own runs.db and runs/ folder; queued runs get 2 slots."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUIGEN_DB", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.delenv("TUIGEN_RUNS_DIR", raising=False)
    monkeypatch.setenv("TUIGEN_SLOTS", "2")
    yield
    _kill_leftover_workers(tmp_path)


def _kill_leftover_workers(tmp_path: Path) -> None:
    """A failing test must not leave workers training in the background."""
    db = tmp_path / "runs.db"
    if not db.exists():
        return
    import signal

    s = Store(f"sqlite:///{db}")
    for run in s.list_runs(status=["starting", "running"]):
        if run.pid:
            try:
                os.killpg(run.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
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

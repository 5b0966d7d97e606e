"""Start a worker process that outlives the terminal that started it.

The worker gets its own session (no SIGHUP when the SSH session closes), its output goes to
runs/<id>/output.log, and stdin is /dev/null. If the launcher stays alive (the TUI), a daemon
thread reaps the child so it never lingers as a zombie.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ..settings import GPUS_ENV
from ..store import Store
from .logs import log_path
from .process import start_time


def worker_command(run_id: int, db_file: str | Path | None = None) -> list[str]:
    """The worker's argv. It holds no store URL: that comes through the environment (local) or
    a file only its owner can read (Slurm), so `ps` shows no password."""
    return [sys.executable, "-m", "tuigen.runner.worker", str(run_id), *(["--db-file", str(db_file)] if db_file else [])]


def worker_env(store: Store) -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", TUIGEN_DB=store.url)


def device_env(device: str, gpus_allowed: list[str]) -> dict[str, str]:
    """What the worker of a run given `device` sees: only its GPU(s), numbered as NVML numbers
    them (PCI bus order, CUDA's default is fastest first), so inside the worker it is cuda:0.
    A CPU run sees none. TUIGEN_GPUS keeps the user's restriction for the queue the worker
    schedules when it exits."""
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", GPUS_ENV: ",".join(gpus_allowed) or "-1"}
    env["CUDA_VISIBLE_DEVICES"] = device[5:] if device.startswith("cuda:") else "-1"
    return env


def spawn_worker(store: Store, run_id: int, run_dir: str | Path, *, device: str = "cpu",
                 threads: int | None = None, gpus_allowed: list[str] = ()) -> int:
    run_dir = store.check_folder(store.get_run(run_id))  # never write a log into a folder not the run's
    env = {**worker_env(store), **device_env(device, list(gpus_allowed))}
    if threads:
        env["TUIGEN_THREADS"] = str(threads)
    with open(log_path(run_dir), "ab") as log:
        proc = subprocess.Popen(worker_command(run_id), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                close_fds=True)
    threading.Thread(target=proc.wait, name=f"reap-worker-{proc.pid}", daemon=True).start()
    # Record who runs it now: the reaper can tell a worker that died before its first write.
    store.update_run(run_id, pid=proc.pid, proc_start=start_time(proc.pid))
    return proc.pid

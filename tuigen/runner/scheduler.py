"""The local queue: runs beyond the concurrency limit wait as `queued` and start when a slot
frees. Every tuigen process schedules (the CLI after a launch, a worker as it exits, the
TUI on its poll), so the queue drains whether or not a terminal is open."""
from __future__ import annotations

import os

from .. import settings
from ..store import HOST, QUEUED, RunFolderError, Store
from .launcher import spawn_worker
from .monitor import local_gpus
from .reaper import reconcile


def local_slots() -> tuple[int, list[str]]:
    """(how many runs may run at once here, the GPU devices to hand out).

    A slot per GPU the queue may use (see monitor.local_gpus); without GPUs a CPU budget of one
    run per two cores, each run getting its share of the cores as torch threads. TUIGEN_SLOTS
    overrides the count.
    """
    devices = local_gpus()
    forced = settings.slots()
    if forced:
        return forced, devices
    if devices:
        return len(devices), devices
    return cpu_slots(), []


def cpu_slots() -> int:
    """Runs on the CPU at once: one per two cores (on a GPU host, beside the GPU runs)."""
    return max(1, (os.cpu_count() or 1) // 2)


def threads_per_run(slots: int) -> int:
    return max(1, (os.cpu_count() or 1) // slots)


def schedule(store: Store) -> list[int]:
    """Reconcile, then start as many queued runs as there are free local slots."""
    reconcile(store)
    return _start_queued(store)


def maintain(store: Store) -> None:
    """What every tuigen process does now and then: mark dead workers crashed, and start
    queued runs when any wait (a cheap read first, so idle stores take no write lock)."""
    reconcile(store)
    if store.list_runs(status=QUEUED, limit=1):
        _start_queued(store)


def _start_queued(store: Store) -> list[int]:
    slots, devices = local_slots()
    started = []
    for run in store.claim_queued(HOST, slots, devices=devices, cpu_slots=cpu_slots()):
        try:
            # a GPU run feeds its GPU from a share of the cores too: every core as torch threads
            # in each of several GPU workers only makes them fight over the CPU
            share = threads_per_run(slots if run.device.startswith("cuda") or not devices else cpu_slots())
            spawn_worker(store, run.id, run.run_dir, device=run.device, threads=share,
                         gpus_allowed=[d[5:] for d in devices])
            started.append(run.id)
        except (OSError, RunFolderError) as e:
            store.transition(run.id, "failed", when=["starting"], error=f"could not start the worker: {e}")
    return started

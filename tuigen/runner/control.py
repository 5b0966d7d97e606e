"""Actions on runs shared by the CLI and the TUI: launch, stop, resume, delete.
Each returns a one-line message for a person and raises ControlError for bad requests."""
from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path
from typing import Sequence

from .. import config as schema
from ..experiments import get_kind
from ..store import ACTIVE, KILLED, LIVE, QUEUED, RESUMABLE, STARTING, Store
from .process import is_alive
from .reaper import reconcile
from .scheduler import schedule


class ControlError(ValueError):
    """A request that cannot be done; the message says why."""


def launch(store: Store, kind_name: str, values: dict, *, name: str = "", tags: Sequence[str] = (),
           parent_id: int | None = None, base=None, sweep_id: int | None = None) -> int:
    """Validate a config, record a queued run, and start it if a slot is free."""
    kind = get_kind(kind_name)
    cfg = schema.build(kind.config, values, base=base)
    dataset = getattr(cfg, "dataset", "")
    if dataset.startswith("folder:"):  # store the absolute path: the worker may run elsewhere
        dataset = "folder:" + str(Path(dataset[7:]).expanduser().resolve())
        cfg.dataset = dataset
    if not dataset and hasattr(cfg, "source"):  # domain adaptation: the scenario is the dataset
        dataset = f"{cfg.source}->{cfg.target}"
    run = store.create_run(kind.name, schema.to_json(cfg), name=name, dataset=dataset, tags=tags,
                           parent_id=parent_id, sweep_id=sweep_id, total_steps=getattr(cfg, "train_num_steps", None))
    schedule(store)
    return run.id


def launch_sweep(store: Store, kind_name: str, grid: dict[str, list], *, base_values: dict | None = None,
                 name: str = "", tags: Sequence[str] = (), max_parallel: int | None = None,
                 parent_id: int | None = None) -> list[int]:
    """One run per combination of the grid's values, all validated before any is queued."""
    kind = get_kind(kind_name)
    keys = list(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    for combo in combos:  # fail before queuing anything
        schema.build(kind.config, {**(base_values or {}), **combo})
    sweep_id = store.create_sweep(name or f"{kind_name}-sweep", kind_name, grid, max_parallel) if len(combos) > 1 else None
    ids = []
    for i, combo in enumerate(combos):
        suffix = "-" + ",".join(f"{k}={v}" for k, v in combo.items()) if len(combos) > 1 else ""
        ids.append(launch(store, kind_name, {**(base_values or {}), **combo}, name=(name or kind_name) + suffix,
                          tags=tags, parent_id=parent_id, sweep_id=sweep_id))
    return ids


def stop(store: Store, run_id: int, *, force: bool = False) -> str:
    run = store.get_run(run_id)
    if run.status == QUEUED and store.transition(run_id, KILLED, when=[QUEUED], ended_at=time.time(),
                                                 error="killed while queued"):
        return f"run {run_id} removed from the queue"
    if run.status in (QUEUED, STARTING) and store.transition(
            run_id, KILLED, when=[QUEUED, STARTING], ended_at=time.time(), error="killed before it started"):
        return f"run {run_id} stopped before it started"  # its worker reads this and exits
    run = store.get_run(run_id)
    if run.status not in LIVE:
        return f"run {run_id} is {run.status}"
    if not is_alive(run.pid, run.proc_start):
        reconcile(store)
        return f"run {run_id}: its process is gone; marked {store.get_run(run_id).status}"
    sig = signal.SIGKILL if force else signal.SIGTERM
    try:  # the worker leads its own session: signal the whole group (it may have children)
        os.killpg(run.pid, sig) if run.executor == "local" else os.kill(run.pid, sig)
    except ProcessLookupError:
        pass
    if force:
        store.transition(run_id, KILLED, when=LIVE, ended_at=time.time(), error="killed with SIGKILL (no checkpoint)")
        return f"run {run_id} killed"
    return f"run {run_id}: asked to stop (it saves a checkpoint first)"


def resume(store: Store, run_id: int) -> str:
    run = store.get_run(run_id)
    if not get_kind(run.kind).resumable:
        raise ControlError(f"run {run.id} is of kind '{run.kind}', which cannot resume; "
                           f"use clone to start it again")
    if run.status not in RESUMABLE:
        raise ControlError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs can resume")
    if not store.transition(run.id, QUEUED, when=RESUMABLE, error=None, ended_at=None, pid=None, proc_start=None):
        raise ControlError(f"run {run.id} changed state meanwhile; try again")
    store.add_event(run.id, "resume requested")
    schedule(store)
    return f"run {run_id} resumed"


def delete(store: Store, run_id: int, *, force: bool = False) -> str:
    run = store.get_run(run_id)
    if run.status in ACTIVE:
        if not force:
            raise ControlError(f"run {run_id} is {run.status}; kill it first or pass --force")
        stop(store, run_id, force=True)
    store.delete_run(run_id)
    return f"run {run_id} deleted"

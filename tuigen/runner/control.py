"""Actions on runs shared by the CLI and the TUI: launch, stop, resume, delete.
Each returns a one-line message for a person and raises ControlError for bad requests."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Sequence

from .. import config as schema
from ..errors import InputError
from ..experiments import data_parallel_kinds, get_kind
from ..store import ACTIVE, HOST, KILLED, LIVE, QUEUED, RESUMABLE, STARTING, UNKNOWN, Store, current_user
from . import slurm
from .process import is_alive
from .reaper import reconcile
from .scheduler import schedule
from .sweeps import combinations

EXECUTORS = ("local", "slurm")


class ControlError(InputError):
    """A request that cannot be done; the message says why."""


def launch(store: Store, kind_name: str, values: dict, *, name: str = "", tags: Sequence[str] = (),
           parent_id: int | None = None, base=None, sweep_id: int | None = None,
           executor: str = "local", resources: dict | None = None, study_id: int | None = None,
           trial_number: int | None = None) -> int:
    """Validate a config, record a queued run, and start it if a slot is free (local) or
    submit it (slurm: `resources` holds partition, gpus, time, sbatch_args, signal_before).
    A study's trial carries its study and Optuna trial number."""
    kind = get_kind(kind_name)
    if executor not in EXECUTORS:
        raise ControlError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{executor}'")
    if executor == "slurm":
        slurm.check_launch(resources or {}, store.runs_root)
        _require_sbatch()
    _check_parallel(kind, executor, resources or {})
    cfg = schema.build(kind.config, values, base=base)
    if executor == "local":
        _check_device(getattr(cfg, "device", "auto"), resources or {})
    dataset = getattr(cfg, "dataset", "")
    if dataset.startswith("folder:"):  # store the absolute path: the worker may run elsewhere
        dataset = "folder:" + str(Path(dataset[7:]).expanduser().resolve())
        cfg.dataset = dataset
    if not dataset and hasattr(cfg, "source"):  # domain adaptation: the scenario is the dataset
        dataset = f"{cfg.source}->{cfg.target}"
    run = store.create_run(kind.name, schema.to_json(cfg), name=name, dataset=dataset, tags=tags,
                           parent_id=parent_id, sweep_id=sweep_id, total_steps=getattr(cfg, "train_num_steps", None),
                           executor=executor, resources=resources, study_id=study_id, trial_number=trial_number)
    _start(store, run.id, executor)
    return run.id


def _check_parallel(kind, executor: str, resources: dict) -> None:
    """Refuse at launch what the worker could only fail later: several processes for a kind
    that trains on one, or more GPUs than this machine has (the local executor)."""
    gpus, procs = resources.get("gpus") or 1, resources.get("processes") or 1
    if gpus > 1 and procs > 1:
        raise ControlError("--gpus and --processes exclude each other: GPU ranks or CPU ranks, not both")
    if max(gpus, procs) > 1 and not kind.data_parallel:
        flag = "--gpus" if gpus > 1 else "--processes"
        raise ControlError(f"{flag} {max(gpus, procs)}: kind '{kind.name}' trains on one process; "
                           f"data-parallel kinds are {data_parallel_kinds()}")
    if executor == "local" and resources.get("gpus"):
        from .monitor import local_gpus

        have = len(local_gpus())
        if gpus > have:
            raise ControlError(f"--gpus {gpus}: this machine has {have} GPU(s); use --executor slurm for a "
                               f"bigger machine, or --processes N for data-parallel CPU processes")


def _check_device(device: str, resources: dict) -> None:
    """`--device cuda:N` names physical GPU N (NVML's numbering), which the local queue must be
    able to give the run; refuse at launch what the worker could only fail at."""
    if not device.startswith("cuda"):
        return
    from .monitor import local_gpus

    gpus = local_gpus()
    if not gpus:
        raise ControlError(f"--device {device}: this machine has no GPU the queue may use; "
                           "use --device cpu or auto")
    if device == "cuda":
        return
    if (resources.get("gpus") or 1) > 1:
        raise ControlError(f"--device {device} names one GPU, but --gpus asks for {resources['gpus']}; "
                           "leave --device at auto to get any free ones")
    if device not in gpus:
        raise ControlError(f"--device {device}: not a GPU the queue may use here; expected one of "
                           f"{', '.join(gpus)} (see TUIGEN_GPUS / CUDA_VISIBLE_DEVICES)")


def _start(store: Store, run_id: int, executor: str) -> None:
    """A queued run goes to its executor: the local queue, or Slurm's."""
    if executor != "slurm":
        schedule(store)
        return
    try:
        slurm.submit(store, run_id)
    except slurm.SlurmError as e:  # the run is recorded as failed with sbatch's words
        raise ControlError(f"run {run_id}: sbatch failed: {e}") from None


def _require_sbatch() -> None:
    try:
        slurm.require_sbatch()
    except slurm.SlurmError as e:
        raise ControlError(str(e)) from None


def launch_sweep(store: Store, kind_name: str, grid: dict[str, list], *, base_values: dict | None = None,
                 name: str = "", tags: Sequence[str] = (), max_parallel: int | None = None,
                 parent_id: int | None = None, random: int | None = None, seed: int = 0,
                 executor: str = "local", resources: dict | None = None) -> list[int]:
    """One run per combination of the grid's values (or `random` of them), all validated
    before any is queued."""
    kind = get_kind(kind_name)
    combos = combinations(grid, random=random, seed=seed)
    for combo in combos:  # fail before queuing anything
        schema.build(kind.config, {**(base_values or {}), **combo})
    spec = {"grid": grid, "base": base_values or {}, "random": random, "seed": seed if random else None}
    sweep_id = store.create_sweep(name or f"{kind_name}-sweep", kind_name, spec, max_parallel) if len(combos) > 1 else None
    ids = []
    for combo in combos:
        suffix = "-" + ",".join(f"{k}={v}" for k, v in combo.items()) if len(combos) > 1 else ""
        ids.append(launch(store, kind_name, {**(base_values or {}), **combo}, name=(name or kind_name) + suffix,
                          tags=tags, parent_id=parent_id, sweep_id=sweep_id, executor=executor, resources=resources))
    return ids


def stop(store: Store, run_id: int, *, force: bool = False) -> str:
    run = store.get_run(run_id)
    if run.executor == "slurm":
        return _stop_slurm(store, run, force)
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


def _stop_slurm(store: Store, run, force: bool) -> str:
    """scancel: the worker gets SIGTERM and checkpoints (it records killed itself); a job
    still pending, or a forced stop, is recorded killed here."""
    if run.status not in ACTIVE + (UNKNOWN,):
        return f"run {run.id} is {run.status}"
    if not run.external_id:
        raise ControlError(f"run {run.id} has no Slurm job id yet; try again in a moment")
    try:
        slurm.cancel(run.external_id, force=force)
    except slurm.SlurmError as e:
        raise ControlError(f"run {run.id}: scancel of Slurm job {run.external_id} failed: {e}") from None
    if store.transition(run.id, KILLED, when=[QUEUED], ended_at=time.time(), error="cancelled while queued in Slurm"):
        return f"run {run.id} removed from Slurm's queue (job {run.external_id})"
    if force and store.transition(run.id, KILLED, when=LIVE + (UNKNOWN,), ended_at=time.time(),
                                  error="killed with scancel --signal=KILL (no checkpoint)"):
        return f"run {run.id} killed (Slurm job {run.external_id})"
    return f"run {run.id}: Slurm job {run.external_id} cancelled (the run saves a checkpoint first)"


def resume(store: Store, run_id: int, *, force: bool = False) -> str:
    run = store.get_run(run_id)
    if not get_kind(run.kind).resumable:
        raise ControlError(f"run {run.id} is of kind '{run.kind}', which cannot resume; "
                           f"use clone to start it again")
    if run.status not in RESUMABLE:
        raise ControlError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs can resume")
    if run.status == UNKNOWN and not force:
        where = f"pid {run.pid} on {run.host}" if run.pid else f"on {run.host or 'another host'}"
        raise ControlError(f"run {run.id} is unknown: its worker ({where}, {run.executor} executor) may still be "
                           "alive and training; make sure it is gone, then resume with --force")
    store.check_folder(run)
    if run.executor == "slurm":
        _require_sbatch()
    if not store.transition(run.id, QUEUED, when=RESUMABLE, error=None, ended_at=None, pid=None, proc_start=None,
                            launched_by=current_user(), launched_on=HOST):
        raise ControlError(f"run {run.id} changed state meanwhile; try again")
    store.add_event(run.id, "resume requested" + (" (--force: its last worker may be alive)" if force else ""))
    _start(store, run.id, run.executor)
    return f"run {run_id} resumed"


def delete(store: Store, run_id: int, *, force: bool = False) -> str:
    run = store.get_run(run_id)
    if run.status in ACTIVE:
        if not force:
            raise ControlError(f"run {run_id} is {run.status}; kill it first or pass --force")
        stop(store, run_id, force=True)
    kept = store.delete_run(run_id)
    return f"run {run_id} deleted" + (f"; {kept}" if kept else "")

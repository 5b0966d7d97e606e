"""The Slurm executor: the same worker program, submitted with sbatch.

    submit()   writes runs/<id>/slurm.sbatch, sbatch's it, records the job id (runs.external_id)
    query()    job states by id: squeue -t all, then sacct, then scontrol (works without accounting)
    cancel()   scancel, for `tuigen kill`
    requeue_self()  the worker's side of preemption: after its checkpoint, queued again + requeue
    reconcile()     maps Slurm's states onto run states for runs the worker can no longer record

The job asks for an early SIGUSR1 (--signal=B:USR1@N). The worker saves a checkpoint, marks the
run queued and requeues its own job; when Slurm starts it again, the same run resumes.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..display import safe_text
from ..errors import InputError
from ..files import write_text
from ..store import COMPLETED, CRASHED, FAILED, KILLED, QUEUED, RUNNING, STARTING, UNKNOWN, Store
from .launcher import worker_command
from .logs import log_path, tail

SIGNAL_BEFORE_S = 120  # how long before its end (time limit, preemption) a job is told to checkpoint
SCRIPT_NAME = "slurm.sbatch"
DB_FILE_NAME = ".store-url"  # mode 0600: the worker in the job reads the store URL from it
QUERY_TIMEOUT_S = 20.0
WATCHED = (QUEUED, STARTING, RUNNING, UNKNOWN)  # run states Slurm may still have news for


class SlurmError(RuntimeError):
    """A Slurm command failed; the message carries its stderr."""


class SlurmInputError(InputError):
    """A Slurm option that cannot become one #SBATCH line; the message names the flag."""


@dataclass(frozen=True)
class JobState:
    state: str  # Slurm's base state, e.g. RUNNING, CANCELLED (without "by 0")
    reason: str = ""
    exit_code: str = ""


# Slurm state -> (run state, why). None: the worker owns the transition (it is alive or starting).
STATE_MAP: dict[str, tuple[str | None, str]] = {
    "PENDING": (QUEUED, "pending in Slurm"),
    "CONFIGURING": (QUEUED, "its nodes are being configured"),
    "REQUEUED": (QUEUED, "requeued by Slurm"),
    "REQUEUE_HOLD": (QUEUED, "requeued and held by Slurm"),
    "REQUEUE_FED": (QUEUED, "requeued by Slurm"),
    "PREEMPTED": (QUEUED, "preempted by Slurm"),
    "SUSPENDED": (None, "suspended by Slurm"),
    "RUNNING": (None, "running in Slurm"),
    "COMPLETING": (None, "completing in Slurm"),
    "COMPLETED": (COMPLETED, "the Slurm job completed"),
    "CANCELLED": (KILLED, "cancelled in Slurm"),
    "TIMEOUT": (KILLED, "hit its Slurm time limit"),
    "DEADLINE": (KILLED, "hit its Slurm deadline"),
    "OUT_OF_MEMORY": (FAILED, "ran out of memory (Slurm OUT_OF_MEMORY)"),
    "FAILED": (CRASHED, "the Slurm job failed"),
    "NODE_FAIL": (CRASHED, "its Slurm node failed"),
    "BOOT_FAIL": (CRASHED, "its Slurm node failed to boot"),
}


# -- submitting -------------------------------------------------------------------------
def require_sbatch() -> None:
    if shutil.which("sbatch") is None:
        raise SlurmError("--executor slurm needs sbatch on PATH (install Slurm's client tools "
                         "or run tuigen on a login node)")


# What may go into an #SBATCH line. A newline there would end the directive and start a shell
# command in the job script; sbatch also stops reading directives at the first non-comment line.
PARTITION = re.compile(r"[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*")
TIME = re.compile(r"(\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|unlimited|infinite)", re.IGNORECASE)  # sbatch(1) --time


def check_resources(resources: dict) -> None:
    """Refuse, before any run exists, what would not be exactly one sbatch option each."""
    part, limit = resources.get("partition"), resources.get("time")
    if part is not None and not PARTITION.fullmatch(str(part)):
        raise SlurmInputError(f"--partition {safe_text(part)!r}: expected a partition name (letters, digits, "
                              "_ . + -), or several separated by commas")
    if limit is not None and not TIME.fullmatch(str(limit)):
        raise SlurmInputError(f"--time {safe_text(limit)!r}: expected one of Slurm's formats: MINUTES, MM:SS, "
                              "HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED")
    for arg in resources.get("sbatch_args", []):
        if not str(arg).startswith("-") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in str(arg)):
            raise SlurmInputError(f"--sbatch-arg {safe_text(arg)!r}: expected one sbatch option such as --mem=16G, "
                                  "on one line, without control characters")


def check_launch(resources: dict, runs_root: Path) -> None:
    """Everything a Slurm launch needs to be refused for, checked before the run is recorded."""
    check_resources(resources)
    _quoted(runs_root)


def _quoted(path: Path) -> str:
    """A path as an #SBATCH value: quoted (spaces) with % doubled (sbatch's filename patterns)."""
    text = str(path)
    if any(c in text for c in '"\\') or not text.isprintable():
        raise SlurmInputError(f"the runs folder {safe_text(text)!r} holds a quote, a backslash or a control "
                              "character, which an #SBATCH line cannot carry; use TUIGEN_RUNS_DIR without them")
    return '"' + text.replace("%", "%%") + '"'


def batch_script(run_id: int, run_dir: str | Path, resources: dict, db_file: str | Path) -> str:
    """The sbatch script: #SBATCH lines from the run's resources, then the worker itself (which
    reads the store URL from `db_file`, readable by its owner only: the script holds no secret)."""
    check_resources(resources)
    run_dir = Path(run_dir)
    opts = [f"--job-name=tuigen-{run_id}", f"--output={_quoted(log_path(run_dir))}", "--open-mode=append",
            "--requeue", f"--signal=B:USR1@{int(resources.get('signal_before', SIGNAL_BEFORE_S))}"]
    if resources.get("partition"):
        opts.append(f"--partition={resources['partition']}")
    if resources.get("gpus"):
        opts.append(f"--gpus={resources['gpus']}")
    if resources.get("time"):
        opts.append(f"--time={resources['time']}")
    opts += resources.get("sbatch_args", [])
    lines = ["#!/bin/bash", *(f"#SBATCH {o}" for o in opts), "",
             "# Written by tuigen: the run's worker, as under the local executor.",
             "export PYTHONUNBUFFERED=1",
             # torch threads: the CPUs Slurm gave this job, not the whole node's
             'export TUIGEN_THREADS="${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-}}"',
             # exec: the worker is the batch step's process, so Slurm's signals reach it directly
             "exec " + shlex.join(worker_command(run_id, db_file)), ""]
    return "\n".join(lines)


def submit(store: Store, run_id: int) -> str:
    """sbatch the run's worker; record the job id. The run stays queued until the worker starts."""
    run = store.get_run(run_id)
    resources = json.loads(run.resources or "{}")
    folder = store.check_folder(run)
    db_file = write_text(folder / DB_FILE_NAME, store.url, mode=0o600)
    script = write_text(folder / SCRIPT_NAME, batch_script(run.id, folder, resources, db_file))
    try:
        out = _slurm("sbatch", "--parsable", str(script))
    except SlurmError as e:
        store.transition(run_id, FAILED, when=[QUEUED], ended_at=time.time(), error=f"sbatch refused the run: {e}")
        raise
    job_id = out.strip().split(";")[0]  # --parsable prints "ID" or "ID;CLUSTER"
    store.update_run(run_id, external_id=job_id)
    store.add_event(run_id, f"submitted to Slurm as job {job_id}")
    return job_id


def cancel(job_id: str, *, force: bool = False) -> None:
    """scancel: SIGTERM first (the worker checkpoints), SIGKILL after Slurm's KillWait.
    `force` skips the grace: SIGKILL to every process of the job now."""
    _slurm("scancel", *(["--signal=KILL", "--full"] if force else []), job_id)


def requeue_self(store: Store, run_id: int, attempt: int | None = None) -> tuple[str, str | None]:
    """After the early signal's checkpoint: mark the run queued, then requeue this very job
    (Slurm ends this attempt and starts the job again later; that worker resumes).
    Returns the (status, error) the worker should record if the requeue did not happen."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return KILLED, None
    if not store.transition(run_id, QUEUED, when=[RUNNING, UNKNOWN], attempt=attempt, pid=None, proc_start=None,
                            error=None):
        return KILLED, None
    try:
        _slurm("scontrol", "requeue", job_id)
    except SlurmError as e:
        store.transition(run_id, RUNNING, when=[QUEUED], attempt=attempt)  # let the worker record how it ended
        return KILLED, f"checkpointed on SIGUSR1 but could not requeue Slurm job {job_id}: {e}"
    store.add_event(run_id, f"checkpointed on Slurm's early signal; job {job_id} requeued")
    return QUEUED, None


def restarted_by_slurm(run) -> bool:
    """True inside a job Slurm started again (requeue, preemption, node failure): that worker
    may resume the run even if its previous attempt recorded killed or crashed."""
    return (run.executor == "slurm" and run.external_id is not None
            and os.environ.get("SLURM_JOB_ID") == run.external_id
            and int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0)


# -- asking Slurm -----------------------------------------------------------------------
def query(job_ids: list[str]) -> dict[str, JobState]:
    """Jobs' states by id. squeue knows jobs until MinJobAge after they end; sacct longer,
    where accounting exists; scontrol is the last resort. Jobs nobody knows are left out.
    Raises SlurmError if the controller cannot be asked at all."""
    found = _squeue(job_ids)
    missing = [j for j in job_ids if j not in found]
    if missing:
        try:
            found.update(_sacct(missing))
        except SlurmError:
            pass  # no accounting here
        for j in [j for j in missing if j not in found]:
            state = _scontrol_show(j)
            if state:
                found[j] = state
    return found


def _squeue(job_ids: list[str]) -> dict[str, JobState]:
    try:
        out = _slurm("squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r")
    except SlurmError as e:
        if "Invalid job id" in str(e):
            return {}  # every one of them has left squeue (MinJobAge); the others are asked
        raise
    found = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in job_ids:
            found[parts[0]] = JobState(_base_state(parts[1]), parts[2] if parts[2] != "None" else "")
    return found


def _sacct(job_ids: list[str]) -> dict[str, JobState]:
    out = _slurm("sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobIDRaw,State,ExitCode,Reason")
    found = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0] in job_ids:
            found[parts[0]] = JobState(_base_state(parts[1]), parts[3] if len(parts) > 3 else "", parts[2])
    return found


def _scontrol_show(job_id: str) -> JobState | None:
    try:
        out = _slurm("scontrol", "show", "job", "-o", job_id)
    except SlurmError:
        return None  # "Invalid job id specified": Slurm has forgotten it
    fields = dict(tok.split("=", 1) for tok in out.split() if "=" in tok)
    if "JobState" not in fields:
        return None
    reason = fields.get("Reason", "")
    return JobState(_base_state(fields["JobState"]), "" if reason == "None" else reason, fields.get("ExitCode", ""))


def _base_state(text: str) -> str:
    return text.split()[0].rstrip("+") if text.strip() else "UNKNOWN"


def _slurm(*argv: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {QUERY_TIMEOUT_S:.0f} s") from None
    if p.returncode != 0:
        raise SlurmError(f"{shlex.join(argv)} exited {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p.stdout


# -- reconciling ------------------------------------------------------------------------
def reconcile(store: Store) -> list[int]:
    """Apply Slurm's word to slurm runs the worker cannot speak for: a job that ended without
    the worker recording it, a running job Slurm put back in the queue. Returns changed ids."""
    runs = [r for r in store.list_runs(status=WATCHED, executor="slurm") if r.external_id]
    if not runs or shutil.which("squeue") is None:
        return []  # not a Slurm host: heartbeats alone decide
    asked_at = time.time()
    try:
        states = query([r.external_id for r in runs])
    except SlurmError:
        return []  # controller unreachable: heartbeats still decide, and the next call asks again
    changed = []
    for run in runs:
        job = states.get(run.external_id)
        if _apply(store, run, job, asked_at):
            changed.append(run.id)
    return changed


def _apply(store: Store, run, job: JobState | None, asked_at: float) -> bool:
    if job is None:
        to, why = CRASHED, f"Slurm no longer knows job {run.external_id}"
    else:
        to, why = STATE_MAP.get(job.state, (None, ""))
        why = f"Slurm job {run.external_id}: {why}" + (f" ({job.reason})" if job.reason else "")
    if to is None:
        return False
    if to == QUEUED:  # requeued while we thought it ran; the next worker takes it from queued
        when = [STARTING, RUNNING, UNKNOWN]
        if (store.get_run(run.id).started_at or 0) >= asked_at:
            return False  # a new attempt started since we asked: that worker owns the run
    elif to == COMPLETED and run.status == QUEUED:  # ended before a worker ever took it
        to, why, when = CRASHED, why + " before its worker started", [QUEUED]
    else:
        when = list(WATCHED)
    last = tail(run.run_dir) if to in (CRASHED, FAILED) else ""
    fields = {"pid": None, "proc_start": None} if to == QUEUED else {
        "ended_at": time.time(), "error": why + (f"\n--- last lines of output.log ---\n{last}" if last else "")}
    if not store.transition(run.id, to, when=when, **fields):
        return False
    store.add_event(run.id, f"marked {to}: {why}", "info" if to in (QUEUED, COMPLETED) else "warning")
    return True

"""Studies: hyperparameter search with Optuna, each trial an ordinary tuigen run.

Who drives the study: a driver process per study, started like a worker (its own session,
output in runs/studies/<id>/driver.log, stdin /dev/null), so closing the terminal or the SSH
session leaves it driving. It is the only process that talks to Optuna:

    python -m tuigen.runner.study STUDY_ID        (the store URL comes in $TUIGEN_DB, never argv)

Each round it asks Optuna for parameters and launches a trial as a queued run (the local queue or
Slurm, like any run, linked by runs.study_id / trial_number); reports the run's objective points
(its periodic stored score, e.g. the FID of --fid_every, or its logged metric) as intermediate
values; stops a trial the pruner rejects through control.stop (SIGTERM: the run checkpoints and
its worker records killed; the driver then records `pruned` with the reason); and tells Optuna
each finished trial's objective (the last point). A driver that is gone (a reboot) is started
again by `tuigen tune --resume NAME`, which picks up the trials in flight from the store.

Optuna's storage lives beside the store: a JournalStorage file next to a SQLite runs.db (Optuna
documents its file backend as safe for several processes on one host), or Optuna's RDBStorage
in the schema `optuna` of the store's own PostgreSQL database (its advice for several machines).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from .. import config as schema
from ..config import ConfigError
from ..experiments import get_kind, scores
from ..store import ACTIVE, COMPLETED, HOST, KILLED, PRUNED, Store
from . import control
from .process import is_alive, start_time
from .sweeps import SWEEP_SEP, split_values

POLL_S = 1.0
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
OPTUNA_SCHEMA = "optuna"  # on PostgreSQL: Optuna's tables apart from tuigen's (both have alembic_version)


class StudyError(ConfigError):
    """A tune request that cannot be done; the message names the flag and value."""


# -- the search space, from flag text: 'log:1e-4:1e-2', '1e-4:1e-2', '32|64|128', or one value --------
def parse_space(kind_name: str, texts: dict[str, str]) -> tuple[dict, dict]:
    """(space, fixed) from {knob: text}; every value and bound checked by the kind's schema.
    Ranges (LOW:HIGH, log:LOW:HIGH) are for number knobs; `a|b|c` is a choice for any knob."""
    ks = {k.name: k for k in schema.knobs(get_kind(kind_name).config)}
    space, fixed = {}, {}
    for name, text in texts.items():
        k = ks[name]
        base = schema._base(k.type)
        parts = text.split(":")
        if base in (int, float) and SWEEP_SEP not in text and (len(parts) == 2 or (len(parts) == 3 and parts[0] == "log")):
            log = parts[0] == "log"
            low, high = (schema.parse_value(k, p) for p in parts[-2:])
            for v in (low, high):
                schema.check_value(k, v)
            if not low < high:
                raise StudyError(f"{k.flag} {text}: the range needs LOW < HIGH")
            if log and low <= 0:
                raise StudyError(f"{k.flag} {text}: a log range needs LOW > 0")
            space[name] = {"type": base.__name__, "low": low, "high": high, "log": log}
            continue
        values = split_values(text)
        for raw in values:
            schema.check_value(k, schema.parse_value(k, raw))
        if len(values) > 1:
            space[name] = {"type": "categorical", "choices": values}
        else:
            fixed[name] = values[0]
    if not space:
        raise StudyError("tune needs at least one knob to search: a range like --lr log:1e-4:1e-2 "
                         "or choices like --channels '32|64|128'")
    return space, fixed


def default_direction(objective: str) -> str | None:
    known = scores().get(objective)
    return None if known is None else ("maximize" if known.higher_is_better else "minimize")


# -- Optuna's storage, beside the store ----------------------------------------------------------
def storage_description(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return f"Optuna JournalStorage file {_journal_path(u.database)}"
    return f"Optuna RDBStorage in schema {OPTUNA_SCHEMA} of the store's database"


def _journal_path(database: str) -> Path:
    db = Path(database)
    return db.with_name(db.stem + ".optuna-journal.log")


def optuna_storage(url: str):
    import optuna
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(_journal_path(u.database))))
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    engine.dispose()
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}})


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- starting and resuming ----------------------------------------------------------------------
def create(store: Store, kind_name: str, texts: dict[str, str], *, trials: int, objective: str,
           direction: str | None = None, name: str = "", max_parallel: int = 1, sampler: str = "tpe",
           seed: int = 0, pruner: str = "median", prune_startup: int = 5, prune_warmup: int = 0,
           executor: str = "local", resources: dict | None = None, tags: list[str] | None = None) -> int:
    """Check the request, record the study (in the store and in Optuna) and start its driver."""
    kind = get_kind(kind_name)
    direction = direction or default_direction(objective)
    if direction is None:
        raise StudyError(f"--metric {objective} is not a declared score ({', '.join(sorted(scores()))}); "
                         f"say which way is better with --direction minimize or --direction maximize")
    space, fixed = parse_space(kind.name, texts)  # a point the cross-field rules refuse fails as its trial
    name = name or f"{kind.name}-{objective}-{time.strftime('%Y%m%d-%H%M%S')}"
    if any(s.name == name for s in store.list_studies()):
        raise StudyError(f"--name {name}: a study of that name exists; continue it with tuigen tune --resume {name}")
    spec = {"space": space, "fixed": fixed, "trials": trials, "max_parallel": max_parallel, "sampler": sampler,
            "seed": seed, "pruner": pruner, "prune_startup": prune_startup, "prune_warmup": prune_warmup,
            "executor": executor, "resources": resources or {}, "tags": tags or []}
    import optuna  # after the checks: a bad request is refused at once

    _quiet_optuna()
    optuna.create_study(study_name=name, storage=optuna_storage(store.url), direction=direction)
    study = store.create_study(name, kind.name, objective, direction, spec, storage_description(store.url))
    spawn_driver(store, study.id)
    return study.id


def resume(store: Store, name: str, *, trials: int | None = None) -> int:
    study = store.get_study(name)
    if driver_alive(study):
        raise StudyError(f"study {study.name} is being driven by pid {study.driver_pid} on {study.driver_host}; "
                         f"nothing to resume")
    if trials is not None:
        spec = json.loads(study.spec)
        spec["trials"] = trials
        store.update_study(study.id, spec=json.dumps(spec))
    store.update_study(study.id, status="running", error=None, ended_at=None)
    spawn_driver(store, study.id)
    return study.id


def stop(store: Store, name: str) -> list[str]:
    """Stop a study: its driver (it records `stopped`), then its active trials."""
    study = store.get_study(name)
    said = []
    if driver_alive(study):
        os.kill(study.driver_pid, signal.SIGTERM)
        said.append(f"study {study.name}: driver pid {study.driver_pid} asked to stop")
    for run in store.list_runs(study_id=study.id, status=ACTIVE):
        said.append(control.stop(store, run.id))
    return said or [f"study {study.name} is {study.status}"]


def driver_alive(study) -> bool:
    """True while the recorded driver drives (on another host: while the study says running;
    a driver that recorded its end is finishing, not driving)."""
    if study.status != "running":
        return False
    if study.driver_host and study.driver_host != HOST:
        return True
    return is_alive(study.driver_pid, study.driver_start)


def driver_log(store: Store, study_id: int) -> Path:
    return store.runs_root / "studies" / str(study_id) / "driver.log"


def spawn_driver(store: Store, study_id: int) -> int:
    log = driver_log(store, study_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TUIGEN_DB=store.url)  # the URL (maybe a password) not in argv
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tuigen.runner.study", str(study_id)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env=env, close_fds=True)
    threading.Thread(target=proc.wait, name=f"reap-driver-{proc.pid}", daemon=True).start()
    store.update_study(study_id, driver_pid=proc.pid, driver_start=start_time(proc.pid), driver_host=HOST)
    return proc.pid


# -- the driver ---------------------------------------------------------------------------------
class Driver:
    def __init__(self, store: Store, study_id: int, stop: threading.Event):
        import optuna

        _quiet_optuna()
        self.store, self.stop_flag = store, stop
        self.row = store.get_study(study_id)
        self.spec = json.loads(self.row.spec)
        self.kind = get_kind(self.row.kind)
        self.study = optuna.load_study(study_name=self.row.name, storage=optuna_storage(store.url),
                                       sampler=_sampler(self.spec), pruner=_pruner(self.spec))
        self.distributions = {k: _distribution(d) for k, d in self.spec["space"].items()}

    def run(self) -> str:
        """Drive until every trial has an outcome (`done`) or a stop is asked (`stopped`)."""
        while not self.stop_flag.is_set():
            in_flight = self.follow_trials()
            created = len(self.study.get_trials(deepcopy=False))
            while created < self.spec["trials"] and in_flight < self.spec["max_parallel"]:
                in_flight += self.start_trial()
                created += 1
            if created >= self.spec["trials"] and in_flight == 0:
                return "done"
            self.stop_flag.wait(POLL_S)
        return "stopped"

    def follow_trials(self) -> int:
        """Report, prune and finish the trials Optuna holds as running; how many still run."""
        import optuna

        runs = {r.trial_number: r for r in self.store.list_runs(study_id=self.row.id)}
        running = 0
        for frozen in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            run = runs.get(frozen.number)
            if run is None:  # asked, but the driver stopped before launching it
                self.study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
                continue
            running += self.follow(frozen, run)
        return running

    def follow(self, frozen, run) -> int:
        import optuna

        trial = optuna.trial.Trial(self.study, frozen._trial_id)  # (Optuna's id of the trial, for report)
        points = self.store.objective_points(run.id, self.row.objective)
        for step, value in points:
            if step not in frozen.intermediate_values and math.isfinite(value):
                trial.report(value, step)
        reason = frozen.user_attrs.get("prune_reason")
        if run.status in ACTIVE or run.status == "unknown":
            if reason is None and points and self.spec["pruner"] != "none" and trial.should_prune():
                reason = self._prune_reason(frozen, points)
                trial.set_user_attr("prune_reason", reason)
                self.store.add_event(run.id, reason)
                print(f"trial {frozen.number} (run {run.id}): {reason}", flush=True)
                control.stop(self.store, run.id)
            return 1
        State = optuna.trial.TrialState
        if run.status == COMPLETED and points:
            self.study.tell(frozen.number, points[-1][1])
        elif run.status in (KILLED, PRUNED) and reason is not None:
            self.store.transition(run.id, PRUNED, when=[KILLED], error=reason)
            self.study.tell(frozen.number, state=State.PRUNED)
        else:
            why = (f"run {run.id} completed without a {self.row.objective}" if run.status == COMPLETED
                   else f"run {run.id} is {run.status}")
            trial.set_user_attr("error", why)
            self.study.tell(frozen.number, state=State.FAIL)
        print(f"trial {frozen.number} (run {run.id}) finished: {self.study.get_trials(deepcopy=False)[frozen.number].state.name}",
              flush=True)
        return 0

    def _prune_reason(self, frozen, points) -> str:
        """What the pruner saw, in words: this trial's best so far against the median of the
        completed trials at the same step (the median pruner's rule)."""
        import optuna

        step = points[-1][0]
        mine = [v for _, v in points]
        best = min(mine) if self.row.direction == "minimize" else max(mine)
        others = [t.intermediate_values[step] for t in self.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if step in t.intermediate_values]
        versus = f", worse than the median {statistics.median(others):.4g} of completed trials there" if others else ""
        return (f"pruned by the {self.spec['pruner']} pruner at step {step}: best {self.row.objective} so far "
                f"{best:.4g}{versus} (study {self.row.name}, trial {frozen.number})")

    def start_trial(self) -> int:
        """Ask Optuna for a point and queue it as a run; 1 if a run was queued."""
        import optuna

        trial = self.study.ask(self.distributions)
        values = {**self.spec["fixed"], **trial.params}
        try:
            run_id = control.launch(self.store, self.kind.name, values, name=f"{self.row.name}-{trial.number}",
                                    tags=self.spec["tags"], executor=self.spec["executor"],
                                    resources=self.spec["resources"] or None, study_id=self.row.id,
                                    trial_number=trial.number)
        except (ConfigError, control.ControlError) as e:  # a point the kind's cross-field rules refuse
            trial.set_user_attr("error", str(e))
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            print(f"trial {trial.number} not started: {e}", flush=True)
            return 0
        trial.set_user_attr("tuigen_run_id", run_id)
        print(f"trial {trial.number}: run {run_id} with {trial.params}", flush=True)
        return 1


def _distribution(d: dict):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if d["type"] == "categorical":
        return CategoricalDistribution(d["choices"])
    cls = IntDistribution if d["type"] == "int" else FloatDistribution
    return cls(d["low"], d["high"], log=d["log"])


def _sampler(spec: dict):
    import optuna

    if spec["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=spec["seed"])
    return optuna.samplers.TPESampler(seed=spec["seed"])


def _pruner(spec: dict):
    import optuna

    if spec["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec["prune_startup"], n_warmup_steps=spec["prune_warmup"])
    return optuna.pruners.NopPruner()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuigen.runner.study")
    p.add_argument("study_id", type=int)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: we lead our own session
    store = Store(os.environ.get("TUIGEN_DB"))
    store.update_study(args.study_id, driver_pid=os.getpid(), driver_start=start_time(), driver_host=HOST)
    print(f"tuigen study driver pid {os.getpid()}: study {args.study_id}", flush=True)
    try:
        status, error = Driver(store, args.study_id, stop).run(), None
    except Exception as e:  # noqa: BLE001 - recorded on the study, then the driver exits
        status, error = "failed", "".join(traceback.format_exception(e))
        print(error, flush=True)
    store.update_study(args.study_id, status=status, error=error, ended_at=time.time())
    print(f"tuigen study driver: study {args.study_id} {status}", flush=True)
    store.close()
    return 0 if status != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Log from any script: the run shows up in tuigen like a built-in one.

    import tuigen
    run = tuigen.init(project="cats", config={"lr": 1e-4})
    for i in range(steps):
        run.log({"loss": loss}, step=i)
    run.log_image("samples", grid, step=i)
    run.finish()

Crash-safe: an exception that ends the script marks the run failed (with its traceback);
a script killed outright is found dead by the reaper and marked crashed.

Launched by tuigen (`tuigen exec -- python train.py`, a Slurm job, a sweep), `init` records into
the run that launched it (TUIGEN_RUN_ID in the environment, as W&B's agent does), so one piece
of work is one run; that run's worker keeps owning its status.
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Mapping

from .runner.process import start_time
from .runner.recorder import Recorder
from .store import COMPLETED, FAILED, HOST, KILLED, RUNNING, STARTING, Store


class Run:
    """A run recorded by the script that executes it (executor 'inline'), or attached to the run
    that launched the script (`attached`: the launching worker records how it ends)."""

    def __init__(self, store: Store, run_id: int, run_dir: str, *, attempt: int | None = None,
                 attached: bool = False):
        self.id = run_id
        self._store = store
        self._rec = Recorder(store, run_id, run_dir, attempt=attempt)
        self._rec.start()
        self._attached = attached
        self._finished = False
        self._lock = threading.Lock()
        self._auto_step = 0

    @property
    def dir(self) -> str:
        return str(self._rec.run_dir)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record scalars. Without `step`, each call is the next step (0, 1, 2, ...)."""
        if step is None:
            step, self._auto_step = self._auto_step, self._auto_step + 1
        else:
            self._auto_step = step + 1 if isinstance(step, int) else self._auto_step
        if isinstance(step, int):
            self._rec.step = max(self._rec.step, step)
        self._rec.log(metrics, step)  # a step that is not a whole number in range: skipped, with a warning

    def log_image(self, key: str, image: Any, step: int | None = None, *,
                  value_range: tuple[float, float] = (0.0, 1.0), **kw: Any) -> str:
        """Save an image, or a batch as a grid (`nrow=` per row), as a PNG of this run. Float
        pixels are read in `value_range`: (0, 1) by default, as torchvision's save_image;
        pass (-1, 1) for a model's tanh output. uint8 pixels are written as they are."""
        return str(self._rec.log_image(key, image, self._rec.step if step is None else step,
                                       value_range=value_range, **kw))

    def set_total(self, total_steps: int) -> None:
        """Let progress bars show an ETA."""
        self._store.update_run(self.id, total_steps=int(total_steps))

    def event(self, message: str, level: str = "info") -> None:
        self._rec.event(message, level)

    def finish(self, status: str = COMPLETED, error: str | None = None) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._rec.close()
        if self._attached:  # the worker that launched the script records the run's end
            if error:
                self._store.add_event(self.id, f"the script ended with an error:\n{error}", "error")
            return
        self._store.transition(self.id, status, when=[RUNNING], ended_at=time.time(), error=error)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish(KILLED, "interrupted")
        else:
            self.finish(FAILED, "".join(traceback.format_exception(exc_type, exc, tb)))


_active: list[Run] = []


def init(project: str = "", name: str = "", config: Mapping[str, Any] | None = None, *,
         db: str | None = None, tags: tuple[str, ...] | list[str] = (), kind: str = "script",
         dataset: str = "") -> Run:
    """Start recording a run in the store (`db`, TUIGEN_DB or ./runs.db); inside a run tuigen
    launched (TUIGEN_RUN_ID set, no `db` given), record into that run instead."""
    cfg = dict(config or {})
    if os.environ.get("TUIGEN_RUN_ID") and db is None:
        return _attach(int(os.environ["TUIGEN_RUN_ID"]), cfg, name=name, project=project, tags=tags)
    store = Store(db)
    rec = store.create_run(kind, json.dumps(cfg, default=str), name=name, project=project, tags=tags,
                           dataset=dataset or str(cfg.get("dataset", "")), executor="inline",
                           status=STARTING, command=" ".join(sys.argv))
    # Running only with its pid: a script killed between these two writes is left `starting`
    # without a pid, which the reaper marks crashed after a grace period (not running forever).
    store.update_run(rec.id, status=RUNNING, pid=os.getpid(), proc_start=start_time(), host=HOST,
                     started_at=time.time(), heartbeat_at=time.time())
    run = Run(store, rec.id, rec.run_dir)
    _active.append(run)
    return run


def _attach(run_id: int, cfg: dict, *, name: str, project: str, tags) -> Run:
    from .experiments.exec_command import ATTACHED

    store = Store()
    run = store.get_run(run_id)
    folder = store.check_folder(run)
    (folder / ATTACHED).touch()  # the launching exec stops reading metrics from the output
    attempt = int(os.environ.get("TUIGEN_RUN_ATTEMPT") or 0) or None
    stored = json.loads(run.config or "{}")
    fields = {"config": json.dumps({**stored, "script_config": cfg}, default=str)} if cfg else {}
    fields.update({k: v for k, v in (("name", name), ("project", project), ("tags", ",".join(tags))) if v})
    if fields:
        store.update_run(run_id, **fields)
    store.add_event(run_id, f"tuigen.init in pid {os.getpid()} records into this run")
    attached = Run(store, run_id, str(folder), attempt=attempt, attached=True)
    _active.append(attached)
    return attached


def _finish_at_exit() -> None:
    exc = getattr(sys, "last_value", None)  # set when an uncaught exception ended the script
    for run in _active:
        if exc is not None:
            run.finish(FAILED, "".join(traceback.format_exception(exc)))
        else:
            run.finish()


_previous_hook = sys.excepthook


def _excepthook(exc_type, exc, tb):
    sys.last_type, sys.last_value, sys.last_traceback = exc_type, exc, tb
    _previous_hook(exc_type, exc, tb)


sys.excepthook = _excepthook
atexit.register(_finish_at_exit)

"""`exec`: any command as a recorded run (`tuigen exec -- python train.py ...`).

Its output goes to the run's log, and `key=value` / `key: value` numbers in it become
metrics. A `step`, `iter`, `iteration` or `epoch` number on the same line sets the step.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ..config import knob, whole_number
from .base import ExperimentKind

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
PAIR = re.compile(rf"(?<![\w./:@-])([A-Za-z_][\w./-]*)\s*[=:]\s*({NUMBER})(?![\w.])", re.IGNORECASE)
STEP_KEYS = ("step", "iter", "iteration", "epoch", "global_step")


def parse_metrics(line: str) -> tuple[dict[str, float], float | None]:
    """The numbers on one output line, and the step it names (if any, as written: the recorder
    checks that it is a whole number the store can hold)."""
    found = {k: float(v) for k, v in PAIR.findall(line)}
    step = next((found.pop(k) for k in STEP_KEYS if k in found), None)
    return found, step


@dataclass
class ExecConfig:
    command: str = knob("", "the command line to run (shell syntax)",
                        check=lambda v: None if v.strip() else "a command is required")
    cwd: str = knob("", "folder to run it in (default: where tuigen was started)",
                    check=lambda v: None if not v or os.path.isdir(v) else f"{v} is not a folder; expected an existing one")


ATTACHED = ".attached"  # written by tuigen.init in the command: it logs for itself, the output is only kept


def run(cfg: ExecConfig, ctx) -> None:
    """Run the command (it sees TUIGEN_RUN_ID, so a tuigen.init() in it records into this run)
    and turn key=value numbers in its output into metrics, unless it logs for itself."""
    env = dict(os.environ, TUIGEN_DB=ctx.store.url, TUIGEN_RUN_ID=str(ctx.run_id),
               TUIGEN_RUN_ATTEMPT=str(ctx.attempt or ""))  # what tuigen.init attaches with
    proc = subprocess.Popen(cfg.command, shell=True, cwd=cfg.cwd or None, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                            errors="replace", env=env)
    threading.Thread(target=_stop_when_asked, args=(ctx, proc), daemon=True).start()
    counter = 0
    attached = ctx.run_dir / ATTACHED
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        values, step = parse_metrics(line)
        if not values or attached.exists():
            continue
        if step is not None and whole_number(step) is None:  # nan, 1e19...: the line stays in the log
            ctx.log(values, step)  # the recorder skips it with one warning event
            continue
        counter = whole_number(step) if step is not None else counter + 1
        ctx.step = max(ctx.step, counter)
        ctx.log(values, counter)
    code = proc.wait()
    if code != 0 and not ctx.should_stop:
        raise RuntimeError(f"command exited with code {code}: {cfg.command}")


def _stop_when_asked(ctx, proc: subprocess.Popen) -> None:
    while proc.poll() is None:
        if ctx.should_stop:
            proc.terminate()
            return
        time.sleep(0.2)


_DEMO = ("import math, time\n"
         "for i in range(1, 61):\n"
         "    print(f'step={i} loss={math.exp(-i / 20):.4f} acc={1 - math.exp(-i / 15):.3f}', flush=True)\n"
         "    time.sleep(0.25)\n")

KIND = ExperimentKind(
    name="exec",
    config=ExecConfig,
    entry="tuigen.experiments.exec_command:run",
    summary="run any command as a recorded run; key=value numbers in its output become metrics",
    demo=({"command": f"{sys.executable} -c \"{_DEMO}\""},),
    resumable=False,
    uses_torch=False,
)

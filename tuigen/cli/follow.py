"""`--follow`: a live progress bar for one run, read from the store (the run does not
depend on it: Ctrl-C stops following, never the run)."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..experiments import KINDS
from ..store import ACTIVE, Store

POLL_S = 0.5


def follow(store: Store, run_id: int, console: Console) -> int:
    """Show progress until the run ends; exit code 0 completed/killed, 1 failed/crashed."""
    run = store.get_run(run_id)
    kind = KINDS.get(run.kind)
    metric = kind.progress_metric if kind else "loss"
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[metric]}"), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(f"run {run_id} {run.kind}", total=run.total_steps, metric="", rate="")
            last_step, last_t, rate = run.step, time.monotonic(), 0.0
            while True:
                run = store.get_run(run_id)
                now = time.monotonic()
                if run.step > last_step and now > last_t:
                    rate = 0.7 * rate + 0.3 * (run.step - last_step) / (now - last_t) if rate else (run.step - last_step) / (now - last_t)
                    last_step, last_t = run.step, now
                s = store.summary(run_id).get(metric)
                bar.update(task, total=run.total_steps, completed=run.step,
                           metric=f"{metric} {s.last:.4g}" if s else run.status,
                           rate=f"{rate:.1f} it/s" if rate else "")
                if run.status not in ACTIVE:
                    break
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        console.print(f"stopped following; run {run_id} keeps going (tuigen logs {run_id} -f, tuigen kill {run_id})")
        return 0
    style = "green" if run.status == "completed" else "red"
    console.print(f"run {run_id} [{style}]{run.status}[/]")
    if run.error and run.status in ("failed", "crashed"):
        console.print(run.error.strip().splitlines()[-1] if run.error.strip() else "", markup=False)
    return 0 if run.status in ("completed", "killed") else 1

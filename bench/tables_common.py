"""What the evaluation tables (ddim_table.py, guidance_table.py, dann_table.py) share: running
the tuigen CLI on their own store, and finding what an earlier, interrupted run of the script
already finished, so each script is resumable and computes only what is missing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuigen.store import Store  # noqa: E402

DONE, ENDED = "completed", ("completed", "failed", "killed", "crashed")


def tuigen(db: str, *args: str, capture: bool = False) -> str:
    """`tuigen --db DB ARGS`, this repository's code, failing loudly; its stdout when captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tuigen", "--db", db, *map(str, args)]
    print("$ tuigen", " ".join(map(str, args)), flush=True)
    done = subprocess.run(cmd, env=env, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return done.stdout or ""


def run_named(store: Store, db: str, name: str, launch: list[str]) -> int:
    """The id of the completed run called `name`: found, resumed when it was stopped or crashed,
    or launched with `launch` (`tuigen run ...` arguments) and waited for."""
    found = [r for r in store.list_runs(newest_first=False) if r.name == name]
    if not found:
        tuigen(db, "run", *launch, "--name", name)
        found = [r for r in store.list_runs(newest_first=False) if r.name == name]
    run = found[-1]
    if run.status in ("killed", "crashed", "unknown"):
        tuigen(db, "resume", run.id)
    return wait_done(store, run.id)


def wait_done(store: Store, run_id: int, poll: float = 20.0) -> int:
    while (run := store.get_run(run_id)).status not in ENDED:
        time.sleep(poll)
    if run.status != DONE:
        raise SystemExit(f"run {run_id} ({run.name}) ended {run.status}: {run.error}")
    return run_id


def stored_score(store: Store, run_id: int, metric: str, step: int, **wanted) -> dict | None:
    """The newest score of `metric` at checkpoint `step` whose provenance has the `wanted` values."""
    for score in reversed(store.scores(metric=metric, run_ids=[run_id])):
        prov = json.loads(score.provenance)
        if score.step == step and all(prov.get(k) == v for k, v in wanted.items()):
            return {"value": score.value, "std": score.std, "provenance": prov}
    return None


def open_store(db: str) -> Store:
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    return Store(db)

"""`tuigen demo`: queue the demo (runner/demo.py's plan); `--figures` is its last run's work."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console

from ..display import strict_json
from ..runner.demo import FIGURES, PLAN, launch_demo, plan
from ..store import ACTIVE, COMPLETED

if TYPE_CHECKING:
    from ..store import Store

out = Console(highlight=False)
WAIT_POLL_S = 1.0


def add_parser(sub) -> None:
    d = sub.add_parser("demo", help="queue small real runs of every kind on built-in data (about 3 minutes on 2 cores)",
                       description="Queue small real runs that leave every screen something to show: sample "
                                   "grids, a denoising strip, FID and accuracy scores, t-SNE plots, two runs to "
                                   "compare. Example: tuigen demo && tuigen")
    d.add_argument("--if-empty", action="store_true", help="only when the store has no runs yet")
    d.add_argument("--tiny", action="store_true", help="the same runs with every loop cut short (seconds; for tests)")
    d.add_argument("--figures", type=_ids, metavar="IDS", help=argparse.SUPPRESS)  # demo-figures' own work
    d.add_argument("--json", action="store_true")


def _ids(text: str) -> list[int]:
    try:
        ids = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected run ids separated by commas, got {text!r}") from None
    if len(ids) != len(PLAN):
        raise argparse.ArgumentTypeError(f"expected {len(PLAN)} run ids (one per demo run), got {len(ids)}")
    return ids


def cmd_demo(store: Store, args) -> int:
    if args.figures:
        return _figures(store, args.figures)
    if args.if_empty and store.list_runs(limit=1):
        return 0
    ids = launch_demo(store, tiny=args.tiny)
    if args.json:
        print(strict_json(ids))
    else:
        minutes = round(sum(r.expected_s for r in (*plan(), FIGURES)) / 60)
        out.print(f"started {len(ids)} demo runs ({ids[0]}-{ids[-1]}); they take turns in the queue, about "
                  f"{minutes} minutes on 2 idle CPU cores (longer on a busy machine). Watch them: tuigen")
    return 0


def _figures(store: Store, ids: list[int]) -> int:
    """Wait for the demo's runs to end, then run each completed one's `after` verbs (a strip,
    an accuracy score) as `tuigen VERB ...`, their output in this run's log; 1 if any failed."""
    from ..runner.reaper import reconcile

    while any(store.get_run(i).status in ACTIVE for i in ids):
        reconcile(store)  # a run that died is recorded, not waited for
        time.sleep(WAIT_POLL_S)
    failed = 0
    for run, run_id in zip(PLAN, ids):
        if store.get_run(run_id).status != COMPLETED:
            continue
        for verb in run.after:
            argv = [a.replace("{id}", str(run_id)) for a in verb]
            print(f"tuigen {' '.join(argv)}", flush=True)
            failed += subprocess.run([sys.executable, "-m", "tuigen", *argv]).returncode != 0
    return 1 if failed else 0

"""The DANN table: target accuracy of source-only / DANN / target-only for MNIST -> MNIST-M and
MNIST-M -> DIGITS (the offline stand-in for USPS), each the mean of 3 seeds with its spread,
every run's number taken by a rule that never looks at target labels (`tuigen dann-table`).

    nice -n 19 .venv/bin/python bench/dann_table.py [--db bench-out/dann.db] [--seeds 3]

Every run keeps dann's defaults (28 px, 10 epochs, SGD with the paper's schedules) and skips
t-SNE. Resumable: runs are found by their names; missing ones are queued one at a time
(TUIGEN_SLOTS=1), stopped ones resumed, and the tables are printed once all are done.
"""
from __future__ import annotations

import argparse
import os

from tables_common import open_store, tuigen, wait_done

SCENARIOS = (("mnist", "mnist-m"), ("mnist-m", "digits"))
MODES = ("source-only", "dann", "target-only")
TAG = "bench-dann"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="bench-out/dann.db")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    os.environ["TUIGEN_SLOTS"] = "1"  # one run at a time: each gets the whole CPU
    store = open_store(args.db)
    runs = {r.name: r for r in store.list_runs(tag=TAG, newest_first=False)}
    wanted = []
    for source, target in SCENARIOS:
        for mode in MODES:
            for seed in range(args.seeds):
                name = f"{source}-to-{target}-{mode}-s{seed}"
                run = runs.get(name)
                if run is None:
                    tuigen(args.db, "run", "dann", "--source", source, "--target", target, "--mode", mode,
                           "--seed", seed, "--tsne_points", "0", "--tag", TAG, "--name", name)
                elif run.status in ("killed", "crashed", "unknown"):
                    tuigen(args.db, "resume", run.id)
                wanted.append(name)
    by_name = {r.name: r.id for r in store.list_runs(tag=TAG)}
    for name in wanted:
        wait_done(store, by_name[name])
    for rule in ("last", "best-source-val"):
        print()
        tuigen(args.db, "dann-table", "--tag", TAG, "--rule", rule)


if __name__ == "__main__":
    main()

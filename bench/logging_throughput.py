"""Logging throughput and per-call overhead of `tuigen.init` / `run.log`.

    .venv/bin/python bench/logging_throughput.py [--points 200000] [--keys 1,10]

Per-call overhead is the median wall time of one `run.log` call (buffered; a batch write
happens inside some calls, and is included). Throughput counts points from the first
`log` until `finish()` has committed every point to the store.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tuigen  # noqa: E402
from tuigen.store import Store  # noqa: E402


def measure(db: str, points: int, keys: int) -> dict:
    run = tuigen.init(project="bench", name=f"{keys}-keys", db=db)
    names = [f"metric_{i}" for i in range(keys)]
    calls = points // keys
    per_call = []
    t0 = time.perf_counter()
    for step in range(calls):
        values = {n: step * 0.001 for n in names}
        c0 = time.perf_counter_ns()
        run.log(values, step=step)
        per_call.append(time.perf_counter_ns() - c0)
    run.finish()
    elapsed = time.perf_counter() - t0
    stored = len(Store(db).metrics(run.id))
    assert stored == calls * keys, f"lost points: {stored} of {calls * keys}"
    return {"keys": keys, "calls": calls, "points": stored, "seconds": elapsed,
            "points_per_s": stored / elapsed, "median_call_us": statistics.median(per_call) / 1000,
            "p99_call_us": sorted(per_call)[int(0.99 * len(per_call))] / 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=200_000)
    p.add_argument("--keys", default="1,10", help="metric keys per log call, comma-separated")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUIGEN_RUNS_DIR"] = str(Path(tmp) / "runs")
        db = f"sqlite:///{tmp}/bench.db"
        print(f"tuigen {tuigen.__version__}, SQLite WAL store, {os.cpu_count()} CPUs")
        print(f"{'keys/call':>9} {'points':>9} {'seconds':>8} {'points/s':>10} {'median call':>12} {'p99 call':>10}")
        for k in (int(x) for x in args.keys.split(",")):
            r = measure(db, args.points, k)
            print(f"{r['keys']:>9} {r['points']:>9} {r['seconds']:>8.2f} {r['points_per_s']:>10,.0f} "
                  f"{r['median_call_us']:>10.1f}us {r['p99_call_us']:>8.1f}us")


if __name__ == "__main__":
    main()

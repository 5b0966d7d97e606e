"""The TUI's store work at scale: 10,000 runs and 10 million metric points.

    .venv/bin/python bench/tui_store_scale.py [--runs 10000] [--points-per-run 1000]

Prints the median wall time of: an incremental runs-table refresh (what the TUI does every
0.5 s), a full resync (every 10th refresh), loading one run's whole history and an
incremental run-screen poll, the leaderboard query, and the TUI's cold start to a drawn
runs table with 1,000 runs (a fresh process). Goals: refresh < 50 ms, leaderboard < 100 ms,
cold start < 0.5 s. The store is generated once under /tmp (reused when it exists).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuigen.store import Store  # noqa: E402


def generate(path: Path, runs: int, points: int) -> None:
    """Bulk-write the store with sqlite3 directly (setup, not measured)."""
    Store(f"sqlite:///{path}").close()  # schema via the real migrations
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    statuses = ["completed"] * 8 + ["failed", "killed"]
    con.executemany(
        "INSERT INTO runs (id, name, kind, project, dataset, status, config, tags, created_at, started_at, ended_at, "
        "host, executor, device, step, total_steps, run_dir) VALUES (?, ?, 'ddpm', '', ?, ?, ?, '', ?, ?, ?, 'bench', "
        "'local', 'cpu', ?, ?, '')",
        [(i, f"run-{i}", "mnist" if i % 2 else "cats", statuses[i % 10] if i < runs - 20 else "running",
          json.dumps({"lr": [1e-4, 5e-4, 1e-3][i % 3], "batch_size": [16, 32][i % 2], "channels": 64}),
          now, now, now + 60, points, points) for i in range(1, runs + 1)])
    keys = ("loss", "val_loss", "lr", "grad_norm")
    per_key = points // len(keys)
    for start in range(1, runs + 1, 200):
        rows, summaries = [], []
        for rid in range(start, min(runs + 1, start + 200)):
            for k in keys:
                vals = [1.0 / (s + 1) for s in range(per_key)]
                rows += [(rid, k, s, v, now) for s, v in enumerate(vals)]
                summaries.append((rid, k, vals[-1], per_key - 1, min(vals), max(vals), per_key))
        con.executemany("INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?)", rows)
        con.executemany("INSERT INTO metric_summary VALUES (?, ?, ?, ?, ?, ?, ?)", summaries)
        con.commit()
        print(f"\r  generating: {min(runs, start + 199):,}/{runs:,} runs", end="", flush=True)
    prov = json.dumps({"n": 2048, "reference": "dataset:mnist/size28"}, sort_keys=True)
    con.executemany("INSERT INTO scores (run_id, metric, value, step, provenance, provenance_key, created_at) "
                    "VALUES (?, 'fid', ?, 1000, ?, 'p2048', ?)", [(i, 20 + i % 50, prov, now) for i in range(1, runs + 1)])
    con.commit()
    con.close()
    print()


def median_ms(fn, repeat: int = 15) -> float:
    fn()  # warm caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


COLD = """
import time, asyncio
t0 = time.perf_counter()
from tuigen.store import Store
from tuigen.tui.app import TuigenApp
async def main():
    app = TuigenApp(Store({url!r}))
    first = None
    async with app.run_test(size=(140, 40)) as pilot:
        while True:
            scr = app.screen
            rows = scr.query_one("#runs").row_count if type(scr).__name__ == "RunsScreen" and scr.query("#runs") else 0
            if rows and first is None:
                await pilot.pause(0)  # let it draw
                first = time.perf_counter()
            if rows >= {n}:
                break
            await pilot.pause(0.005)
        print(f"{{(first - t0) * 1000:.0f}} {{(time.perf_counter() - t0) * 1000:.0f}}")
asyncio.run(main())
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--points-per-run", type=int, default=1_000)
    args = p.parse_args()
    path = Path(f"/tmp/tuigen-bench-{args.runs}x{args.points_per_run}.db")
    if not path.exists():
        print(f"building {path} ({args.runs:,} runs x {args.points_per_run:,} points)...")
        generate(path, args.runs, args.points_per_run)
    store = Store(f"sqlite:///{path}")
    from tuigen.reports.leaderboard import leaderboard
    from tuigen.tui.data import RunsPoller, run_detail

    poller = RunsPoller(store)
    poller.poll()  # the first (full) poll
    total_points = store.engine.connect().exec_driver_sql("SELECT count(*) FROM metrics").scalar()

    poller.poll()  # the resync that loads the rest

    def incremental():
        poller.polls = 2
        poller.poll()

    def full():
        poller.polls = 1
        poller.poll()

    mid = args.runs // 2
    last_id = store.metrics(mid)[-1].id
    results = [
        ("runs table refresh (incremental)", median_ms(incremental), 50),
        ("runs table full resync (every 10th)", median_ms(full, 5), None),
        ("one run's history (first open)", median_ms(lambda: run_detail(store, mid, 0, 0, 0)), None),
        ("run screen poll (incremental)", median_ms(lambda: run_detail(store, mid, last_id, 0, time.time())), 50),
        ("leaderboard (fid, mnist)", median_ms(lambda: leaderboard(store, "fid", dataset="mnist"), 5), 100),
    ]
    small = Path("/tmp/tuigen-bench-1000x100.db")
    if not small.exists():
        generate(small, 1000, 100)
    runs_cold = [subprocess.run([sys.executable, "-c", COLD.format(url=f"sqlite:///{small}", n=1000)],
                                capture_output=True, text=True, cwd=ROOT).stdout.split() for _ in range(3)]
    first_paint = sorted(int(r[0]) for r in runs_cold)[1]
    all_rows = sorted(int(r[1]) for r in runs_cold)[1]
    print(f"store: {args.runs:,} runs, {total_points:,} metric points (SQLite, {os.cpu_count()} CPUs)")
    for name, ms, goal in results:
        print(f"  {name:<40} {ms:8.1f} ms" + (f"   (goal < {goal} ms)" if goal else ""))
    print(f"  {'cold start to a drawn table, 1,000 runs':<40} {first_paint:8.0f} ms   (goal < 500 ms; process start included)")
    print(f"  {'  ... until all 1,000 rows are in it':<40} {all_rows:8.0f} ms")


if __name__ == "__main__":
    main()

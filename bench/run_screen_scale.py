"""The run screen of a long run: 10 curves x 100,000 steps (issue 11's goal: open in < 300 ms
with < 250 MB RSS; W&B's terminal UI is reported at about 520 ms for 20 x 50,000).

    .venv/bin/python bench/run_screen_scale.py [--keys 10] [--steps 100000]

In a fresh process each time (median of 5): the TUI opens on the store headless (140x40), the
run screen is pushed, and the clock stops when every curve is plotted; the process's peak RSS
is printed beside it, and the same with the screen's old read (every point, `store.metrics`)
timed for comparison. The store is generated once under /tmp and reused.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuigen.store import Store  # noqa: E402

OPEN = """
import asyncio, resource, sys, time
from tuigen.tui.app import TuigenApp
from tuigen.tui.screens.run_detail import RunDetailScreen
async def main():
    app = TuigenApp({url!r})
    async with app.run_test(size=(140, 40)) as pilot:
        while not (type(app.screen).__name__ == "RunListScreen" and app.screen.query("#runs")
                   and app.screen.query_one("#runs").row_count):
            await pilot.pause(0.01)
        t0 = time.perf_counter()
        screen = RunDetailScreen(1)
        app.push_screen(screen)
        while len(screen.plots) < {keys} or screen.dirty:
            await pilot.pause(0.002)
        await pilot.pause(0)  # let it draw
        ms = (time.perf_counter() - t0) * 1000
    print(f"{{ms:.1f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}}")
asyncio.run(main())
"""
READ_ALL = """
import resource, time
from tuigen.store import Store
store = Store({url!r})
t0 = time.perf_counter()
points = store.metrics(1)
print(f"{{(time.perf_counter() - t0) * 1000:.1f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}}")
"""


def ensure_store(path: Path, keys: int, steps: int) -> str:
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    store = Store(url)
    run = store.create_run("classifier", {}, name="long-run", status="completed")
    store.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    for k in range(keys):
        key = f"metric_{k}"
        vals = [1.0 / (s + 1) + 0.01 * k for s in range(steps)]
        con.executemany("INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES (?, ?, ?, ?, ?)",
                        [(run.id, key, s, v, now) for s, v in enumerate(vals)])
        con.execute("INSERT INTO metric_summary (run_id, key, last, last_step, min, max, count) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (run.id, key, vals[-1], steps - 1, min(vals), max(vals), steps))
        con.commit()
    con.close()
    return url


def fresh(code: str, repeat: int = 5) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        runs.append(tuple(map(float, out.stdout.split()[-2:])))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5, help="fresh processes a figure is the median of")
    p.add_argument("--store", type=Path, help="the SQLite file to generate (default under /tmp, named by the size)")
    args = p.parse_args()
    path = args.store or Path(f"/tmp/tuigen-bench-curves-{args.keys}x{args.steps}.db")
    url = ensure_store(path, args.keys, args.steps)
    print(f"one run: {args.keys} curves x {args.steps:,} steps ({url})")
    ms, rss = fresh(OPEN.format(url=url, keys=args.keys), args.repeat)
    print(f"  run screen open to every curve plotted  {ms:8.0f} ms   peak RSS {rss:6.0f} MiB   "
          f"(goal < 300 ms, < 250 MB; median of {args.repeat})")
    ms, rss = fresh(READ_ALL.format(url=url), args.repeat)
    print(f"  the old read of every point alone       {ms:8.0f} ms   peak RSS {rss:6.0f} MiB   (store.metrics)")


if __name__ == "__main__":
    main()

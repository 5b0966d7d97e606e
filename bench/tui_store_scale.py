"""The TUI's store work at scale: 10,000 runs and 10 million metric points, on SQLite or PostgreSQL.

    .venv/bin/python bench/tui_store_scale.py [--runs 10000] [--points 10000000] [--db URL]
    .venv/bin/python bench/tui_store_scale.py --db "$(scripts/services/postgres.sh /tmp/pg)"

Prints the median wall time of: an incremental runs-table refresh (what the TUI does every
0.5 s), a full resync (every 10th refresh), loading one run's whole history and an
incremental run-screen poll, the leaderboard query, and the TUI's cold start to a drawn
runs table with 1,000 runs (a fresh process). Goals: refresh < 50 ms, one run's history
< 100 ms, leaderboard < 100 ms, cold start < 0.5 s. The store is generated once (a SQLite
file under /tmp by default; an empty database given with --db) and reused while it holds
the same number of runs and points.
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
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuigen.store import Store  # noqa: E402


KEYS = ("loss", "val_loss", "lr", "grad_norm")
CHUNK_RUNS = 200  # runs whose points are written per transaction


def generate(url: str, runs: int, per_run: int) -> None:
    """Bulk-write the store (setup, not measured): executemany on SQLite, COPY on PostgreSQL."""
    Store(url).close()  # schema via the real migrations
    load = _load_postgres if make_url(url).get_backend_name() == "postgresql" else _load_sqlite
    t0 = time.perf_counter()
    load(url, runs, per_run)
    print(f"\n  generated in {time.perf_counter() - t0:.0f} s")


def _runs(runs: int, per_run: int, now: float):
    statuses = ["completed"] * 8 + ["failed", "killed"]
    for i in range(1, runs + 1):
        yield (i, f"run-{i}", "ddpm", "", "mnist" if i % 2 else "cats",
               statuses[i % 10] if i < runs - 20 else "running",
               json.dumps({"lr": [1e-4, 5e-4, 1e-3][i % 3], "batch_size": [16, 32][i % 2], "channels": 64}),
               "", now, now, now + 60, "bench", "local", "cpu", per_run, per_run, "", str(uuid.UUID(int=i)))


RUN_COLUMNS = ("id, name, kind, project, dataset, status, config, tags, created_at, started_at, ended_at, host, "
               "executor, device, step, total_steps, run_dir, uuid")
METRIC_COLUMNS = "run_id, key, step, value, wall_time"
SUMMARY_COLUMNS = "run_id, key, last, last_step, min, max, count"
SCORE_COLUMNS = "run_id, metric, value, step, provenance, provenance_key, created_at"


def _chunks(runs: int, per_run: int, now: float):
    """(metric rows, summary rows) for CHUNK_RUNS runs at a time: 4 curves a run."""
    per_key = per_run // len(KEYS)
    vals = [1.0 / (s + 1) for s in range(per_key)]
    for start in range(1, runs + 1, CHUNK_RUNS):
        rows, summaries = [], []
        for rid in range(start, min(runs + 1, start + CHUNK_RUNS)):
            for k in KEYS:
                rows += [(rid, k, s, v, now) for s, v in enumerate(vals)]
                summaries.append((rid, k, vals[-1], per_key - 1, min(vals), max(vals), per_key))
        yield start, rows, summaries


def _scores(runs: int, now: float):
    prov = json.dumps({"n": 2048, "reference": "dataset:mnist/size28"}, sort_keys=True)
    return [(i, "fid", 20 + i % 50, 1000, prov, "p2048", now) for i in range(1, runs + 1)]



def _progress(start: int, runs: int) -> None:
    print(f"\r  generating: {min(runs, start + CHUNK_RUNS - 1):,}/{runs:,} runs", end="", flush=True)


def _load_sqlite(url: str, runs: int, per_run: int) -> None:
    con = sqlite3.connect(make_url(url).database)
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    con.executemany(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({', '.join('?' * 18)})", _runs(runs, per_run, now))
    for start, rows, summaries in _chunks(runs, per_run, now):
        con.executemany(f"INSERT INTO metrics ({METRIC_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)
        con.executemany(f"INSERT INTO metric_summary ({SUMMARY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", summaries)
        con.commit()
        _progress(start, runs)
    con.executemany(f"INSERT INTO scores ({SCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", _scores(runs, now))
    con.commit()
    con.close()


def _load_postgres(url: str, runs: int, per_run: int) -> None:
    import psycopg

    def copy(cur, table: str, columns: str, rows) -> None:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)

    now = time.time()
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as con:
        cur = con.cursor()
        copy(cur, "runs", RUN_COLUMNS, _runs(runs, per_run, now))
        cur.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), max(id)) FROM runs")  # ids were given
        con.commit()
        for start, rows, summaries in _chunks(runs, per_run, now):
            copy(cur, "metrics", METRIC_COLUMNS, rows)
            copy(cur, "metric_summary", SUMMARY_COLUMNS, summaries)
            con.commit()
            _progress(start, runs)
        copy(cur, "scores", SCORE_COLUMNS, _scores(runs, now))
        con.commit()
        con.autocommit = True
        cur.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load; the planner needs the stats


def median_ms(fn, repeat: int = 15) -> float:
    fn()  # warm caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


COLD = """
import sys, time, asyncio
from tuigen.tui.app import TuigenApp
async def main():
    app = TuigenApp({url!r})  # as `tuigen` opens it: the app attaches the store itself
    first = None
    async with app.run_test(size=(140, 40)) as pilot:
        while True:
            scr = app.screen
            rows = scr.query_one("#runs").row_count if type(scr).__name__ == "RunListScreen" and scr.query("#runs") else 0
            if rows and first is None:
                await pilot.pause(0)  # let it draw
                first = time.time()
            if rows >= {n}:
                break
            await pilot.pause(0.005)
        print(f"{{first:.6f}} {{time.time():.6f}}")
asyncio.run(main())
"""
COLD_REPEAT = 5


def cold_start_ms(url: str, n: int = 1000) -> tuple[float, float]:
    """Median of COLD_REPEAT fresh processes: ms from spawning the interpreter to the first drawn
    table, and to all `n` rows in it (process start and every import included)."""
    firsts, alls = [], []
    for _ in range(COLD_REPEAT):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", COLD.format(url=url, n=n)], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.split()
        firsts.append((float(out[0]) - t0) * 1000)
        alls.append((float(out[1]) - t0) * 1000)
    return statistics.median(firsts), statistics.median(alls)


def command_start_ms(url: str, newest: str = "run-1000") -> float:
    """Median of COLD_REPEAT starts of the `tuigen` command at a terminal (a pty, 140x40): ms from
    spawning it to the newest run's name on screen. A copy of the store: `tuigen` reconciles."""
    import fcntl
    import pty
    import select
    import shutil
    import struct
    import termios

    copy = Path("/tmp/tuigen-bench-command.db")
    shutil.copy(make_url(url).database, copy)
    times = []
    for _ in range(COLD_REPEAT):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        t0, seen, screen = time.time(), None, b""
        proc = subprocess.Popen([sys.executable, "-m", "tuigen", "--db", str(copy)], stdin=follower, stdout=follower,
                                stderr=follower, cwd=ROOT, env={**os.environ, "TERM": "xterm-256color"})
        while seen is None and time.time() - t0 < 60:
            if select.select([leader], [], [], 0.05)[0]:
                screen += os.read(leader, 65536)
                seen = time.time() if newest.encode() in screen else None
        os.write(leader, b"q")
        deadline = time.time() + 10
        while proc.poll() is None and time.time() < deadline:  # keep reading: a full pty would block its exit
            if select.select([leader], [], [], 0.05)[0]:
                os.read(leader, 65536)
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
        os.close(follower)
        times.append((seen - t0) * 1000)
    return statistics.median(times)


def ensure_store(url: str, runs: int, per_run: int) -> None:
    """Generate the store at `url` if it is empty; reuse it if it already has this size."""
    store = Store(url)
    with store.engine.connect() as c:
        have_runs, have_points = c.exec_driver_sql(
            "SELECT count(*), (SELECT coalesce(sum(count), 0) FROM metric_summary) FROM runs").one()
    store.close()
    want_points = runs * (per_run // len(KEYS) * len(KEYS))
    if have_runs == 0:
        print(f"building {url} ({runs:,} runs x {per_run:,} points)...")
        generate(url, runs, per_run)
    elif (have_runs, have_points) != (runs, want_points):
        sys.exit(f"--db {url} already holds {have_runs:,} runs and {have_points:,} points, not {runs:,} and "
                 f"{want_points:,}: give an empty database, or the --runs/--points it was built with")


def cold_store_url(url: str) -> str:
    """The 1,000-run store for the cold-start check, on the same backend as `url`."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return "sqlite:////tmp/tuigen-bench-1000x100.db"
    name = f"{u.database}_cold1000"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return u.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--points", type=int, default=10_000_000, help="metric points in all (4 curves a run)")
    p.add_argument("--db", help="store URL; default: a SQLite file under /tmp named after the size")
    p.add_argument("--cold", action="store_true", help="only the TUI's cold start (a 1,000-run store; seconds)")
    args = p.parse_args()
    if args.cold:
        small = cold_store_url(args.db or "sqlite:///")
        ensure_store(small, 1000, 100)
        print(f"store: 1,000 runs ({small}, {os.cpu_count()} CPUs)")
        _print_cold(*cold_start_ms(small))
        if make_url(small).get_backend_name() == "sqlite":
            print(f"  {'tuigen at a terminal, to the first row':<40} {command_start_ms(small):8.0f} ms   "
                  f"(median of {COLD_REPEAT})")
        return
    per_run = args.points // args.runs
    if per_run < len(KEYS):
        p.error(f"--points must be at least {len(KEYS)} x --runs ({len(KEYS) * args.runs:,}), got {args.points:,}")
    url = args.db or f"sqlite:////tmp/tuigen-bench-{args.runs}x{per_run}.db"
    ensure_store(url, args.runs, per_run)
    store = Store(url)
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
        ("one run's history (first open)", median_ms(lambda: run_detail(store, mid, 0, 0, 0)), 100),
        ("run screen poll (incremental)", median_ms(lambda: run_detail(store, mid, last_id, 0, time.time())), 50),
        ("leaderboard (fid, mnist)", median_ms(lambda: leaderboard(store, "fid", dataset="mnist")), 100),
    ]
    small = cold_store_url(url)
    ensure_store(small, 1000, 100)
    first_paint, all_rows = cold_start_ms(small)
    dialect = store.engine.dialect
    backend = f"{dialect.name} {'.'.join(map(str, dialect.server_version_info or ()))}".strip()
    print(f"store: {args.runs:,} runs, {total_points:,} metric points ({backend}, {os.cpu_count()} CPUs)")
    for name, ms, goal in results:
        print(f"  {name:<40} {ms:8.1f} ms" + (f"   (goal < {goal} ms)" if goal else ""))
    _print_cold(first_paint, all_rows)


def _print_cold(first_paint: float, all_rows: float) -> None:
    print(f"  {'cold start to a drawn table, 1,000 runs':<40} {first_paint:8.0f} ms   "
          f"(goal < 400 ms; process start included; median of {COLD_REPEAT})")
    print(f"  {'  ... until all 1,000 rows are in it':<40} {all_rows:8.0f} ms")


if __name__ == "__main__":
    main()

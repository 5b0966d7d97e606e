"""Logging from a training loop: tuigen against MLflow and trackio, same points, same machine.

    make bench-peers
    .venv-bench/bin/python bench/logging_vs_peers.py [--steps 3000] [--keys 3] [--repeat 3]

Each tool logs `keys` metrics at each of `steps` steps into a local store in a fresh temp
folder, in its own subprocess (imports, threads and caches never leak between tools):
  tuigen              tuigen.init + run.log(dict, step) + run.finish()   SQLite WAL store
  mlflow log_metric   mlflow.log_metric once per metric per step         sqlite:///.../mlflow.db
  mlflow log_metrics  mlflow.log_metrics(dict, step), one call a step    same
  mlflow async        enable_async_logging() + log_metrics, flush at end same
  mlflow log_batch    MlflowClient.log_batch every 1,000 metrics (MLflow's per-call limit)
  trackio             trackio.init + trackio.log(dict, step) + finish()  local SQLite, no server
"Per step" is the wall time of the logging a loop does at one step (one call, or `keys`
calls for log_metric): median and p99. Throughput counts points from the first log call
until the tool has made every point durable (finish / flush / end_run), then the points are
read back through each tool's own API and must all be there. Start-up (init, schema
creation) is reported apart. The children refuse any non-loopback network connection.

MLflow and trackio are not tuigen dependencies: they live in .venv-bench (make bench-peers).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("tuigen", "mlflow log_metric", "mlflow log_metrics", "mlflow async", "mlflow log_batch", "trackio")
MLFLOW_BATCH = 1000  # mlflow.utils.validation.MAX_METRICS_PER_BATCH

# Offline and quiet: no telemetry, no Hub, no Space, no dashboard.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "true",
               "MLFLOW_DISABLE_TELEMETRY": "true", "GRADIO_ANALYTICS_ENABLED": "False",
               "TRACKIO_STORAGE_MODE": "sqlite", "PYTHONUNBUFFERED": "1"}
UNSET_ENV = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_BUCKET_ID", "TRACKIO_DATASET_ID",
             "MLFLOW_TRACKING_URI", "TUIGEN_DB")


# -- inside a child process: one tool, one run --------------------------------------------
def refuse_network() -> list[str]:
    """Make any connection off this machine fail (and remember it), so 'local' is checked."""
    attempts: list[str] = []
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(str(address))
            raise OSError(f"bench: network refused for {address}")
        return connect(sock, address)

    socket.socket.connect = guarded
    return attempts


def drive(log, steps: int, keys: int) -> list[int]:
    """The training loop: per-step logging time in ns."""
    names = [f"metric_{i}" for i in range(keys)]
    per_step = []
    for step in range(steps):
        values = {n: step * 0.001 + i for i, n in enumerate(names)}
        c0 = time.perf_counter_ns()
        log(values, step)
        per_step.append(time.perf_counter_ns() - c0)
    return per_step


def bench_tuigen(tmp: Path, steps: int, keys: int) -> dict:
    import tuigen
    from tuigen.store import Store

    db = f"sqlite:///{tmp}/runs.db"
    t0 = time.perf_counter()
    run = tuigen.init(project="bench", name="peers", db=db)
    t1 = time.perf_counter()
    per_step = drive(run.log, steps, keys)
    run.finish()
    t2 = time.perf_counter()
    stored = len(Store(db).metrics(run.id))
    return dict(version=tuigen.__version__, init_s=t1 - t0, seconds=t2 - t1, per_step=per_step, stored=stored)


def bench_mlflow(tmp: Path, steps: int, keys: int, mode: str) -> dict:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    mlflow.set_experiment("bench")
    run_id = mlflow.start_run().info.run_id
    client = MlflowClient()
    if mode == "async":
        mlflow.config.enable_async_logging(True)
    t1 = time.perf_counter()
    pending: list = []

    def log_batch(values, step):
        now = int(time.time() * 1000)
        pending.extend(Metric(k, v, now, step) for k, v in values.items())
        if len(pending) >= MLFLOW_BATCH:
            client.log_batch(run_id, metrics=pending[:MLFLOW_BATCH])
            del pending[:MLFLOW_BATCH]

    log = {
        "log_metric": lambda values, step: [mlflow.log_metric(k, v, step=step) for k, v in values.items()],
        "log_metrics": lambda values, step: mlflow.log_metrics(values, step=step),
        "async": lambda values, step: mlflow.log_metrics(values, step=step),
        "log_batch": log_batch,
    }[mode]
    per_step = drive(log, steps, keys)
    if pending:
        client.log_batch(run_id, metrics=pending)
    if mode == "async":
        mlflow.flush_async_logging()
    mlflow.end_run()
    t2 = time.perf_counter()
    stored = sum(len(client.get_metric_history(run_id, f"metric_{i}")) for i in range(keys))
    return dict(version=mlflow.__version__, init_s=t1 - t0, seconds=t2 - t1, per_step=per_step, stored=stored)


def bench_trackio(tmp: Path, steps: int, keys: int) -> dict:
    import trackio
    from trackio.sqlite_storage import SQLiteStorage

    t0 = time.perf_counter()
    trackio.init(project="bench", name="peers", embed=False)
    t1 = time.perf_counter()
    per_step = drive(lambda values, step: trackio.log(values, step=step), steps, keys)
    trackio.finish()
    t2 = time.perf_counter()
    logs = SQLiteStorage.get_logs("bench", "peers")
    stored = sum(1 for row in logs for k in row if k.startswith("metric_"))
    return dict(version=trackio.__version__, init_s=t1 - t0, seconds=t2 - t1, per_step=per_step, stored=stored)


def child(tool: str, tmp: Path, steps: int, keys: int) -> None:
    attempts = refuse_network()
    if tool == "tuigen":
        r = bench_tuigen(tmp, steps, keys)
    elif tool == "trackio":
        r = bench_trackio(tmp, steps, keys)
    else:
        r = bench_mlflow(tmp, steps, keys, tool.split()[1])
    per = sorted(r.pop("per_step"))
    r.update(median_us=statistics.median(per) / 1000, p99_us=per[int(0.99 * len(per))] / 1000,
             points=steps * keys, network_attempts=attempts)
    print("BENCH-RESULT " + json.dumps(r))


# -- the parent: run every tool, print the table ------------------------------------------
def run_child(tool: str, steps: int, keys: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tuigen-peers-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
        env.update(OFFLINE_ENV, TRACKIO_DIR=f"{tmp}/trackio", TUIGEN_RUNS_DIR=f"{tmp}/runs",
                   MLFLOW_ARTIFACT_ROOT=f"{tmp}/mlruns", HOME=tmp)  # HOME: caches land in tmp too
        done = subprocess.run([sys.executable, __file__, "--child", tool, "--dir", tmp, "--steps", str(steps),
                               "--keys", str(keys)], cwd=tmp, env=env, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{tool} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("BENCH-RESULT "))


def summarize(runs: list[dict]) -> dict:
    """Median over repeats of each figure; every repeat must have stored every point."""
    for r in runs:
        if r["stored"] != r["points"]:
            sys.exit(f"lost points: stored {r['stored']} of {r['points']}")
        if r["network_attempts"]:
            sys.exit(f"tried the network: {r['network_attempts']}")
    out = {k: statistics.median(r[k] for r in runs) for k in ("init_s", "seconds", "median_us", "p99_us")}
    out.update(version=runs[0]["version"], points=runs[0]["points"], points_per_s=runs[0]["points"] / out["seconds"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--keys", type=int, default=3, help="metrics logged at each step")
    p.add_argument("--repeat", type=int, default=3, help="fresh runs per tool; the table shows medians")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of: {', '.join(TOOLS)}")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.dir, args.steps, args.keys)
    tools = [t.strip() for t in args.tools.split(",")]
    if unknown := [t for t in tools if t not in TOOLS]:
        p.error(f"--tools: unknown {unknown}; expected some of {', '.join(TOOLS)}")
    print(f"{args.keys} metrics x {args.steps:,} steps = {args.keys * args.steps:,} points per run, "
          f"median of {args.repeat} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    results = {}
    for repeat in range(args.repeat):  # interleaved, so a busy moment on the machine hits every tool
        for tool in tools:
            results.setdefault(tool, []).append(run_child(tool, args.steps, args.keys))
            print(f"\r  run {repeat + 1}/{args.repeat}: {tool:<20}", end="", flush=True)
    print()
    table = {tool: summarize(rs) for tool, rs in results.items()}
    print_table(table)


def print_table(table: dict) -> None:
    base = table.get("tuigen")
    print(f"{'tool':<20} {'version':<9} {'start-up':>9} {'per step':>10} {'p99 step':>10} {'points/s':>10} "
          f"{'tuigen x (throughput)':>22} {'tuigen x (per step)':>20}")
    for tool, r in table.items():
        ratio = (f"{base['points_per_s'] / r['points_per_s']:>21.1f}x {r['median_us'] / base['median_us']:>19.1f}x"
                 if base and tool != "tuigen" else "")
        print(f"{tool:<20} {r['version']:<9} {r['init_s']:>8.2f}s {r['median_us']:>8.1f}us {r['p99_us']:>8.1f}us "
              f"{r['points_per_s']:>10,.0f} {ratio}")
    if not base:
        return
    for peer, goal in (("mlflow", 20), ("trackio", 5)):
        modes = {t: r for t, r in table.items() if t.startswith(peer)}
        if modes:
            best = max(modes, key=lambda t: modes[t]["points_per_s"])
            ratio = base["points_per_s"] / modes[best]["points_per_s"]
            print(f"tuigen vs the fastest {peer} mode ({best}): {ratio:.1f}x end-to-end throughput "
                  f"(goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'})")


if __name__ == "__main__":
    main()

"""Memory is bounded by what is shown, not by the data (issue 11): peak RSS of

    tuigen logs RUN -n 1          on a 300 MB output.log
    tuigen export RUN --format csv / json   of a run with 1,000,000 metric points

    .venv/bin/python bench/memory_bounds.py [--log-mb 300] [--points 1000000]

Each command runs in a fresh process whose peak RSS (ru_maxrss of that child alone) is printed
beside the size of what it read. Goal: logs -n 1 of a 300 MB log under 100 MB.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuigen.store import Store  # noqa: E402

PROBE = ("import resource, subprocess, sys\n"
         "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)\n")


def peak_rss_mb(*args: str) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of `tuigen ARGS` in a process of its own."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, sys.executable, "-m", "tuigen", *args],
                         capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "0":
        raise SystemExit(f"tuigen {' '.join(args)} failed")
    return int(out[0]) / 1024, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log-mb", type=int, default=300)
    p.add_argument("--points", type=int, default=1_000_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUIGEN_DB"] = f"sqlite:///{tmp}/bench.db"
        store = Store()
        run = store.create_run("exec", {}, status="completed")
        line = b"step=123456 loss=0.123456 acc=0.99 lr=0.0001 tokens=1234567 note=some progress output\n"
        with open(Path(run.run_dir) / "output.log", "wb") as f:
            block = line * (1 << 14)
            for _ in range(args.log_mb * 2 ** 20 // len(block)):
                f.write(block)
        size = (Path(run.run_dir) / "output.log").stat().st_size / 2 ** 20
        base, _ = peak_rss_mb("ls")
        rss, secs = peak_rss_mb("logs", str(run.id), "-n", "1")
        print(f"tuigen ls (baseline)                    {base:7.1f} MiB")
        print(f"tuigen logs -n 1 of a {size:.0f} MiB log        {rss:7.1f} MiB  ({secs:.2f} s)  goal < 100 MiB")
        batch = 100_000
        for start in range(0, args.points, batch):
            store.log_metrics(run.id, [("loss", s, 1.0 / (s + 1), 0.0) for s in range(start, start + batch)])
        for fmt in ("csv", "json"):
            rss, secs = peak_rss_mb("export", str(run.id), "--format", fmt, "-o", f"{tmp}/out.{fmt}")
            out_mb = Path(f"{tmp}/out.{fmt}").stat().st_size / 2 ** 20
            print(f"tuigen export --format {fmt:<4} {args.points:,} points {rss:7.1f} MiB  ({secs:.2f} s, "
                  f"{out_mb:.0f} MiB written)")


if __name__ == "__main__":
    main()

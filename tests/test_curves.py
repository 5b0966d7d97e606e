"""Curves are read in memory bounded by what a plot shows, not by the run's length (issue 11):
the run screen, the compare screen and reports read each curve reduced in SQL to the lowest
and highest value of each step bucket, on SQLite and on PostgreSQL."""
from __future__ import annotations

from tuigen.store import Store
from tuigen.tui.data import CURVE_POINTS, run_detail

LONG = 20_000


def _long_run(store: Store) -> int:
    """A loss of LONG steps with one spike at step 12,345 and its lowest value at step 19,000,
    and a short val_loss of 40 points."""
    run = store.create_run("classifier", {})
    loss = [("loss", s, 1.0 / (s + 1) + 0.5, 0.0) for s in range(LONG)]
    loss[12_345] = ("loss", 12_345, 100.0, 0.0)
    loss[19_000] = ("loss", 19_000, 0.001, 0.0)
    for i in range(0, LONG, 5_000):
        store.log_metrics(run.id, loss[i:i + 5_000])
    store.log_metrics(run.id, [("val_loss", s * 500, 2.0 - s / 100, 1.0) for s in range(40)])
    return run.id


def test_a_long_curve_is_reduced_to_its_envelope_and_a_short_one_comes_whole(backend_store):
    run_id = _long_run(backend_store)
    points, newest = backend_store.metric_curves(run_id, 1500)
    by_key = {}
    for p in points:
        by_key.setdefault(p.key, []).append(p)
    loss, val = by_key["loss"], by_key["val_loss"]
    assert [(p.step, p.value) for p in val] == [(p.step, p.value) for p in backend_store.metrics(run_id, "val_loss")]
    assert 700 <= len(loss) <= 1500  # about two points a bucket, never more than asked for
    steps = [p.step for p in loss]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == LONG - 1
    values = [p.value for p in loss]
    assert max(values) == 100.0 and min(values) == 0.001  # the spike and the lowest point survive
    assert newest == max(p.id for p in backend_store.metrics(run_id))


def test_the_run_screen_opens_a_long_run_reduced_and_then_polls_new_points_whole(backend_store):
    run_id = _long_run(backend_store)
    first = run_detail(backend_store, run_id, 0, None, 0.0)
    assert len([p for p in first.points if p.key == "loss"]) <= CURVE_POINTS
    assert max(p.value for p in first.points if p.key == "loss") == 100.0
    backend_store.log_metrics(run_id, [("loss", LONG, 0.25, 2.0), ("loss", LONG + 1, 0.2, 2.0)])
    nxt = run_detail(backend_store, run_id, first.last_point_id, first.log_offset, 0.0)
    assert [(p.key, p.step, p.value) for p in nxt.points] == [("loss", LONG, 0.25), ("loss", LONG + 1, 0.2)]
    again = run_detail(backend_store, run_id, nxt.last_point_id, nxt.log_offset, 0.0)
    assert again.points == [] and again.last_point_id == nxt.last_point_id


def test_the_run_screen_benchmark_opens_a_generated_long_run(tmp_path):
    """bench/run_screen_scale.py at a small size: the TUI opens the run and plots every curve."""
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run_screen_scale.py"), "--keys", "2", "--steps",
                           "3000", "--repeat", "1", "--store", str(tmp_path / "long.db")],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    opened = next(line for line in done.stdout.splitlines() if "every curve plotted" in line)
    assert float(opened.split("ms")[0].split()[-1]) > 0 and "MiB" in opened

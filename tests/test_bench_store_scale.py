"""The store-at-scale benchmark's bulk generator writes a store tuigen reads like its own,
on SQLite (executemany) and PostgreSQL (COPY)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from tuigen.reports.leaderboard import leaderboard
from tuigen.store import Store

BENCH = Path(__file__).resolve().parents[1] / "bench" / "tui_store_scale.py"


def _bench():
    spec = importlib.util.spec_from_file_location("tui_store_scale", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_store_reads_like_a_real_one(db_url):
    _bench().generate(db_url, runs=30, per_run=40)
    store = Store(db_url)
    assert len(store.list_runs()) == 30
    points = store.metrics(7)
    assert len(points) == 40 and {p.key for p in points} == {"loss", "val_loss", "lr", "grad_norm"}
    loss = store.summary(7)["loss"]
    assert (loss.count, loss.last_step, loss.min) == (10, 9, 0.1)
    board = leaderboard(store, "fid", dataset="mnist")
    assert len(board.rows) == 15 and board.columns == ["lr"]  # mnist runs share one batch size
    assert store.create_run("ddpm", {}).id == 31  # ids given in bulk did not leave the sequence behind

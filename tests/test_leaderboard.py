"""Leaderboards rank only scores of one provenance and show the hyperparameters that vary."""
from __future__ import annotations

import json

from tuigen.reports.leaderboard import format_board, leaderboard, varying_params

PROV = {"n": 2048, "reference": "dataset:cats/size64", "extractor": "inception-tf", "sampler": "ddpm", "steps": 1000}


def test_reproduces_the_researchers_tuning_table(store):
    # EXPERIMENTS.md section 1: batch_size, lr, channels, dim_mults -> FID
    table = [(16, 1e-3, 16, [1, 2, 4], 51.6), (16, 1e-3, 64, [1, 2, 4, 8], 37.9), (16, 5e-4, 64, [1, 2, 4, 8], 29.4),
             (16, 1e-4, 128, [1, 2, 4, 8], 25.7), (32, 1e-4, 128, [1, 2, 4, 8], 21.7)]
    for bs, lr, ch, mults, fid in table:
        cfg = {"dataset": "folder:/cats", "image_size": 64, "batch_size": bs, "lr": lr, "channels": ch,
               "dim_mults": mults, "timesteps": 1000}
        run = store.create_run("ddpm", json.dumps(cfg), dataset="folder:/cats")
        store.add_score(run.id, "fid", fid + 10, PROV, step=1000)  # an earlier, worse checkpoint
        store.add_score(run.id, "fid", fid, PROV, step=2000)
    board = leaderboard(store, "fid", dataset="folder:/cats")
    assert board.columns == ["batch_size", "lr", "channels", "dim_mults"]  # only what varies
    assert [r.value for r in board.rows] == [21.7, 25.7, 29.4, 37.9, 51.6]
    assert board.rows[0].params == {"batch_size": 32, "lr": 1e-4, "channels": 128, "dim_mults": [1, 2, 4, 8]}
    assert all(r.step == 2000 for r in board.rows)
    text = format_board(board)
    assert "lower is better" in text and "(1,2,4,8)" in text and "n=2048" in text


def test_scores_of_another_provenance_are_not_ranked_together(store):
    a = store.create_run("ddpm", json.dumps({"lr": 1e-4}), dataset="mnist")
    b = store.create_run("ddpm", json.dumps({"lr": 1e-3}), dataset="mnist")
    c = store.create_run("ddpm", json.dumps({"lr": 3e-4}), dataset="mnist")
    store.add_score(a.id, "fid", 30.0, PROV)
    store.add_score(b.id, "fid", 40.0, PROV)
    store.add_score(c.id, "fid", 5.0, {**PROV, "n": 256})  # better number, not comparable
    board = leaderboard(store, "fid", dataset="mnist")
    assert [r.run_id for r in board.rows] == [a.id, b.id]
    assert len(board.others) == 1 and board.others[0][1] == 1
    text = format_board(board)
    assert "not ranked here" in text and "n=256 instead of 2048" in text
    only_c = leaderboard(store, "fid", dataset="mnist", provenance_key=board.others[0][0])
    assert [r.run_id for r in only_c.rows] == [c.id]


def test_accuracy_ranks_higher_first(store):
    runs = [store.create_run("cond-ddpm", json.dumps({"guidance_scale": w}), dataset="mnist") for w in (0, 2)]
    store.add_score(runs[0].id, "accuracy", 0.78, {"n": 1000})
    store.add_score(runs[1].id, "accuracy", 0.99, {"n": 1000})
    board = leaderboard(store, "accuracy")
    assert board.higher_is_better and [r.value for r in board.rows] == [0.99, 0.78]


def test_varying_params_tells_1_from_true_and_ignores_dict_order():
    configs = [{"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]}, {"a": True, "b": {"y": 2, "x": 1}, "c": [1, 2]}]
    assert varying_params(configs) == ["a"]
    assert varying_params(configs + [{**configs[0], "d": 0}]) == ["a", "d"]

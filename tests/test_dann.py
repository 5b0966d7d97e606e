"""The `dann` kind: the gradient reversal layer and the paper's schedules, tiny real training
runs through a real TorchContext and store (all three modes, t-SNE figures, exact resume),
the 3 x N report table, and config errors."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_same_curves, curves, python, run_in_context
from tuigen.config import ConfigError, build, to_json
from tuigen.experiments.dann import DANNConfig
from tuigen.experiments.dann_train import schedules, train
from tuigen.models.dann import DANN, GRL, annealed_lr, grad_reverse, grl_lambda
from tuigen.reports import dann_table, dann_table_dict, format_dann_table

EPOCH_KEYS = {"label_loss", "train_acc", "source_acc", "target_acc", "lr", "epoch", "images_per_s"}
DANN_KEYS = {"domain_loss", "domain_acc", "lambda"}
TINY = dict(image_size=16, width=4, batch_size=32, steps_per_epoch=3, epochs=2, tsne_points=40,
            optimizer="adam", lr=3e-3, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the model and the schedules ----------------------------------------------------------
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward():
    x = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(4, 5)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)

    layer, x2 = GRL(2.0), x.detach().clone().requires_grad_()
    (layer(x2) * w).sum().backward()
    assert torch.allclose(x2.grad, -2.0 * w)
    layer.lambd, x3 = 0.0, x.detach().clone().requires_grad_()
    (layer(x3) * w).sum().backward()
    assert torch.count_nonzero(x3.grad) == 0  # lambda 0: G_f gets nothing from the domain loss


def test_grl_reverses_only_the_feature_extractors_share_of_the_domain_gradient():
    torch.manual_seed(0)
    model = DANN(3, 10, width=4, image_size=16).train()
    x = torch.randn(8, 3, 16, 16)

    def grads(lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        _, d = model(x, lambd)
        d.sum().backward()
        return model.G_f.net[0].weight.grad.clone(), model.G_d.net[0].weight.grad.clone()

    torch.manual_seed(1)
    gf1, gd1 = grads(1.0)
    torch.manual_seed(1)  # same dropout mask
    gf2, gd2 = grads(0.5)
    assert torch.allclose(gd1, gd2)  # G_d descends its own loss whatever lambda is
    assert torch.allclose(gf2, 0.5 * gf1, atol=1e-7)  # G_f's share scales with lambda
    model.zero_grad()
    y, d = model(x)
    assert y.shape == (8, 10) and d.shape == (8,) and model.features(x).shape == (8, 6 * 16)
    paper = DANN(3, 10, width=32, image_size=28).eval()  # the paper's MNIST sizes: 28 -> 24 -> 12 -> 8 -> 4
    x28 = torch.randn(2, 3, 28, 28)
    assert paper.G_f.net[:-2](x28).shape == (2, 48, 4, 4) and paper.features(x28).shape == (2, 768)


def test_lambda_schedule():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1) and grl_lambda(1.0) > 0.9999
    ps = np.linspace(0, 1, 101)
    values = [grl_lambda(p) for p in ps]
    assert all(b > a for a, b in zip(values, values[1:]))
    assert grl_lambda(0.5, gamma=10) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_lambda(0.5, gamma=1) < grl_lambda(0.5, gamma=10)


def test_lr_annealing_formula():
    assert annealed_lr(0.01, 0.0) == 0.01
    assert annealed_lr(0.01, 1.0) == pytest.approx(0.01 / 11 ** 0.75)
    assert annealed_lr(0.01, 0.3) == pytest.approx(0.01 / (1 + 10 * 0.3) ** 0.75)
    values = [annealed_lr(0.01, p) for p in np.linspace(0, 1, 11)]
    assert all(b < a for a, b in zip(values, values[1:]))


def test_schedules_per_step():
    cfg = build(DANNConfig, {"lr": 0.01, "gamma": 10})
    assert schedules(cfg, 1, 100) == (0.0, 0.0, 0.01)  # p = (step - 1) / total
    p, lam, lr = schedules(cfg, 51, 100)
    assert p == 0.5 and lam == pytest.approx(grl_lambda(0.5)) and lr == pytest.approx(annealed_lr(0.01, 0.5))
    flat = build(DANNConfig, {"lr_anneal": "false", "mode": "source-only"})
    assert schedules(flat, 51, 100)[1:] == (0.0, flat.lr)  # no GRL outside dann mode; constant lr


def test_tsne_is_deterministic_and_subsamples_without_replacement():
    from tuigen.metrics.tsne import subsample, tsne_embed

    keep = subsample(100, 30, np.random.default_rng(0))
    assert len(set(keep.tolist())) == 30 and list(keep) == sorted(keep) and keep.max() < 100
    assert list(subsample(5, 30)) == [0, 1, 2, 3, 4]
    f = np.random.default_rng(0).normal(size=(60, 100)) + np.repeat(np.eye(2, 100) * 20, 30, axis=0)
    a, b = tsne_embed(f, seed=3), tsne_embed(f, seed=3)
    assert a.shape == (60, 2) and np.array_equal(a, b)
    centre = [a[:30].mean(0), a[30:].mean(0)]  # two far-apart clusters stay apart
    assert np.linalg.norm(centre[0] - centre[1]) > 3 * a[:30].std(0).max()


# -- tiny real runs -------------------------------------------------------------------------
def make_run(store, **values):
    cfg = build(DANNConfig, values)
    run = store.create_run("dann", to_json(cfg), dataset=f"{cfg.source}->{cfg.target}")
    store.update_run(run.id, status="running")
    return cfg, run


def run_train(store, cfg, run, ctx_hook=None):
    return run_in_context(train, store, cfg, run, ctx_hook, start=False)




def test_a_tiny_dann_run_trains_logs_every_epoch_and_draws_both_tsne_plots(store):
    cfg, run = make_run(store, source="mnist", target="mnist-m", **TINY)
    ctx = run_train(store, cfg, run)
    assert ctx.step == 6
    got = curves(store, run.id)
    assert sorted(got["loss"]) == list(range(1, 7))
    for key in EPOCH_KEYS | DANN_KEYS:
        assert sorted(got[key]) == [3, 6], key  # at the step that ends each epoch
        assert all(math.isfinite(v) for v in got[key].values()), key
    assert 0 <= got["target_acc"][6] <= 1 and 0 <= got["domain_acc"][6] <= 1
    assert got["lambda"][3] < got["lambda"][6] < 1 and got["lr"][6] < got["lr"][3] < cfg.lr
    assert got["epoch"] == {3: 1, 6: 2}

    for key in ("tsne_class", "tsne_domain"):
        [art] = store.artifacts(run.id, kind="image", key=key)
        path = Path(art.path)
        assert art.step == 6 and path.parent == Path(run.run_dir) / "figures" and path.is_file()
        assert json.loads(art.meta)["points_per_domain"] == 40
        img = np.asarray(Image.open(path).convert("RGB"))
        assert img.shape[0] > 200 and img.shape[1] > 200
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # coloured points, not a blank canvas
    assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [3, 6]
    assert store.artifacts(run.id, kind="text", key="model_summary")
    state = torch.load(Path(run.run_dir, "checkpoints", "ckpt-0000006.pt"), weights_only=True)
    assert state["step"] == 6 and "G_d.net.0.weight" in state["model"]


@pytest.fixture
def flipped_folders(tmp_path, monkeypatch):
    """Two labelled folders whose label <-> brightness relation is flipped: 'dark' is dark in
    the source and bright in the target. Only target labels can teach the target task."""
    monkeypatch.setenv("TUIGEN_CACHE", str(tmp_path / "cache"))  # these folders are cached nowhere else
    rng = np.random.default_rng(0)

    def make(root: Path, dark_is: str) -> str:
        for name in ("dark", "light"):
            (root / name).mkdir(parents=True)
            for i in range(24):
                low = (name == dark_is)
                base = 30 if low else 220
                px = np.clip(base + rng.normal(0, 15, (8, 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / name / f"{i}.png")
        return f"folder:{root}"

    return make(tmp_path / "src", "dark"), make(tmp_path / "tgt", "light")


def test_modes_use_the_right_labels_and_source_only_has_no_domain_loss(store, flipped_folders):
    src, tgt = flipped_folders
    common = dict(source=src, target=tgt, image_size=8, width=4, batch_size=16, steps_per_epoch=15, epochs=1,
                  optimizer="adam", lr=1e-2, tsne_points=0, val_fraction=0.25, device="cpu")
    acc = {}
    for mode in ("source-only", "target-only", "dann"):
        cfg, run = make_run(store, mode=mode, **common)
        run_train(store, cfg, run)
        got = curves(store, run.id)
        keys = set(got) - {"loss"}
        if mode == "dann":
            assert DANN_KEYS <= keys
        else:  # no domain classifier is trained: its metrics are not logged at all
            assert not keys & DANN_KEYS
        acc[mode] = (got["source_acc"][15], got["target_acc"][15])
        assert not store.artifacts(run.id, kind="image")  # tsne_points 0: no t-SNE
    assert acc["target-only"][1] >= 0.9 and acc["target-only"][0] <= 0.1  # learnt the target's labels
    assert acc["source-only"][0] >= 0.9 and acc["source-only"][1] <= 0.1
    assert acc["dann"][1] <= 0.1  # the unlabelled target split lends dann no labels


def test_a_stopped_run_resumes_at_its_step_and_matches_an_uninterrupted_one(store):
    values = dict(source="digits", target="mnist", **{**TINY, "tsne_points": 30})
    cfg, reference = make_run(store, **values)
    run_train(store, cfg, reference)

    cfg, run = make_run(store, **values)

    def stop_after_step_4(ctx):
        log = ctx.log

        def logging(metrics, step=None):
            log(metrics, step)
            if ctx.step == 4:
                ctx.request_stop()  # as SIGTERM does, mid-epoch 2
        ctx.log = logging

    ctx = run_train(store, cfg, run, stop_after_step_4)
    assert ctx.step == 4
    assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [3, 4]
    assert not store.artifacts(run.id, kind="image")  # stopped early: no t-SNE

    ctx = run_train(store, cfg, run)  # a fresh context, as the worker makes on `tuigen resume`
    assert ctx.step == 6
    assert any("resumed from checkpoint at step 4" in e.message for e in store.events(run.id))
    assert_same_curves(store, reference.id, run.id)
    assert {a.key for a in store.artifacts(run.id, kind="image")} == {"tsne_class", "tsne_domain"}


# -- config errors ----------------------------------------------------------------------------
def test_bad_configs_give_clear_errors(tmp_path, flipped_folders):
    src, _ = flipped_folders
    with pytest.raises(ConfigError, match="both 'mnist'.*two different domains"):
        build(DANNConfig, {"source": "mnist", "target": "mnist"})
    with pytest.raises(ConfigError, match="--target shapes: its labels are multi-hot"):
        build(DANNConfig, {"target": "shapes"})
    with pytest.raises(ConfigError, match="--mode must be one of source-only, dann, target-only"):
        build(DANNConfig, {"mode": "adapt"})
    with pytest.raises(ConfigError, match="--source mnist and --target faces have different classes"):
        build(DANNConfig, {"target": "faces"})

    other = tmp_path / "other"
    for name in ("dark", "medium"):
        (other / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(other / name / "a.png")
    (other / "empty").mkdir()  # not a class: no images
    with pytest.raises(ConfigError, match=r"different classes \(2 vs 2; only in the source: light; "
                                          r"only in the target: medium\)"):
        build(DANNConfig, {"source": src, "target": f"folder:{other}"})
    with pytest.raises(ConfigError, match="no class subfolders"):
        build(DANNConfig, {"source": src, "target": f"folder:{other / 'dark'}"})

    # the trainer checks again on the loaded data (a config made without validation)
    cfg = DANNConfig(source=src, target=f"folder:{other}", device="cpu")
    with pytest.raises(ConfigError, match="different classes"):
        train(cfg, None)


def test_folder_paths_are_stored_absolute(tmp_path, monkeypatch, flipped_folders):
    monkeypatch.chdir(tmp_path)
    cfg = build(DANNConfig, {"source": "folder:src", "target": "folder:tgt"})
    assert (cfg.source, cfg.target) == flipped_folders
    assert cfg.scenario == f"{flipped_folders[0]} -> {flipped_folders[1]}"


def test_config_and_report_modules_import_without_torch():
    res = python("import sys\nimport tuigen.experiments.dann, tuigen.reports, tuigen.viz.plots, tuigen.metrics.tsne\n"
                 "print(','.join(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


# -- the report table ---------------------------------------------------------------------------
def fake_run(store, mode, source, target, accs, status="completed", kind="dann"):
    run = store.create_run(kind, {"source": source, "target": target, "mode": mode}, dataset=f"{source}->{target}")
    store.update_run(run.id, status=status)
    now = time.time()
    store.log_metrics(run.id, [("target_acc", i + 1, a, now) for i, a in enumerate(accs)])
    return run.id


def test_dann_table_averages_the_completed_runs_of_each_cell(store):
    a = fake_run(store, "source-only", "mnist", "mnist-m", [0.2, 0.31])
    b = fake_run(store, "dann", "mnist", "mnist-m", [0.4, 0.5, 0.45])
    c = fake_run(store, "dann", "mnist", "mnist-m", [0.55, 0.52])
    fake_run(store, "dann", "mnist", "mnist-m", [0.99], status="failed")  # not completed: ignored
    fake_run(store, "dann", "mnist", "mnist-m", [0.98], status="running")
    fake_run(store, "dann", "mnist", "mnist-m", [0.97], kind="classifier")
    d = fake_run(store, "target-only", "mnist", "mnist-m", [0.9, 0.95])
    e = fake_run(store, "target-only", "mnist", "digits", [0.8])
    fake_run(store, "dann", "mnist", "digits", [])  # completed without a score: no cell

    columns, rows = dann_table(store)  # each run's last epoch (never its best target accuracy)
    assert columns == ["MNIST -> MNIST-M", "MNIST -> DIGITS"]
    assert [label for label, _ in rows] == ["trained on source", "adaptation (DANN)", "trained on target"]
    cells = [[(c.values, c.run_ids) if c else None for c in cs] for _, cs in rows]
    assert cells == [[((0.31,), (a,)), None], [((0.45, 0.52), (b, c)), None], [((0.95,), (d,)), ((0.8,), (e,))]]

    text = format_dann_table(columns, rows)
    lines = text.splitlines()[1:]  # under the line naming the rule
    assert lines[0].split("  ")[-1].strip() == "MNIST -> DIGITS" and "MNIST -> MNIST-M" in lines[0]
    assert lines[1].startswith("trained on source") and "0.3100" in lines[1] and lines[1].endswith("-")
    assert "0.4850 ± 0.0495 (n=2)" in lines[2] and "0.9500" in lines[3] and "0.8000" in lines[3]
    col = lines[0].index("MNIST -> MNIST-M")
    assert all(line[col:].startswith(v) for line, v in zip(lines[1:], ("0.3100", "0.4850", "0.9500")))
    with_ids = format_dann_table(columns, rows, with_ids=True)
    assert f"(n=2; runs {b}, {c})" in with_ids and f"0.8000 (run {e})" in with_ids

    data = json.loads(json.dumps(dann_table_dict(columns, rows)))
    assert data["columns"] == columns and data["rows"][0]["cells"] == [
        {"value": 0.31, "std": None, "n": 1, "values": [0.31], "run_ids": [a]}, None]


def test_dann_table_of_an_empty_store(store):
    columns, rows = dann_table(store)
    assert columns == [] and all(cells == [] for _, cells in rows)
    assert "no completed dann runs" in format_dann_table(columns, rows)

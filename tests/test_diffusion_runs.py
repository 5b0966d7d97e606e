"""Tiny real diffusion runs through the worker, and the sampling verbs on their checkpoints."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import wait_for, wait_status

TINY = ["--image_size", "8", "--channels", "8", "--dim_mults", "1,2", "--num_res_blocks", "1",
        "--attn_resolutions", "4", "--timesteps", "50", "--batch_size", "16", "--lr", "1e-3",
        "--log_every", "1", "--sample_steps", "5", "--num_samples", "4"]


def start(cli, kind, *args) -> int:
    code, out, err = cli("run", kind, *TINY, *args, "--json")
    assert code == 0, err
    return json.loads(out)["id"]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """One unconditional (digits) and one class-conditional (digits) run, 30 steps each."""
    from tuigen.cli import main
    from tuigen.store import Store

    folder = tmp_path_factory.mktemp("trained")
    env = {"TUIGEN_DB": f"sqlite:///{folder / 'runs.db'}", "TUIGEN_SLOTS": "2"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        store = Store()
        ids = []
        for kind in ("ddpm", "cond-ddpm"):
            main(["run", kind, *TINY, "--dataset", "digits", "--train_num_steps", "30", "--sample_every", "15",
                  "--checkpoint_every", "15"])
            ids.append(store.list_runs(limit=1)[0].id)
        for i in ids:
            wait_status(store, i, "completed", timeout=120)
        yield folder, dict(zip(("ddpm", "cond-ddpm"), ids))
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def trained(trained_runs, monkeypatch):
    folder, ids = trained_runs
    monkeypatch.setenv("TUIGEN_DB", f"sqlite:///{folder / 'runs.db'}")
    from tuigen.store import Store

    return Store(), ids


def test_ddpm_run_logs_losses_sample_grids_checkpoints_and_its_architecture(trained, cli):
    store, ids = trained
    run = store.get_run(ids["ddpm"])
    s = store.summary(run.id)
    assert {"loss", "lr", "grad_norm", "images_per_s"} <= set(s) and s["loss"].count == 30
    assert all(np.isfinite(p.value) for p in store.metrics(run.id, "loss"))
    grids = store.artifacts(run.id, kind="image", key="samples")
    assert [a.step for a in grids] == [15, 30] and all(Path(a.path).is_file() for a in grids)
    assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [15, 30]
    code, out, _ = cli("show", str(run.id))
    assert code == 0 and "ResBlock" in out and "total" in out.lower()  # the architecture table
    summary = [a for a in store.artifacts(run.id, kind="text") if a.key == "model_summary"]
    assert summary and "params" in Path(summary[0].path).read_text().lower()


def test_sample_writes_pngs_and_npz_with_provenance(trained, cli, tmp_path):
    store, ids = trained
    code, out, err = cli("sample", str(ids["ddpm"]), "-n", "6", "--batch", "4", "--steps", "5",
                         "--out", str(tmp_path / "s"))
    assert code == 0, err
    images = np.load(tmp_path / "s" / "samples.npz")["images"]
    assert images.shape == (6, 8, 8, 1) and images.dtype == np.uint8
    assert len(list((tmp_path / "s").glob("*.png"))) == 6
    art = store.artifacts(ids["ddpm"], kind="samples")[-1]
    meta = json.loads(art.meta)
    assert meta["n"] == 6 and meta["sampler"] == "ddim" and meta["steps"] == 5 and meta["weights"] == "ema"
    assert meta["checkpoint_step"] == 30


def test_sample_is_reproducible_and_raw_weights_differ_from_ema(trained, cli, tmp_path):
    store, ids = trained
    for name, extra in (("a", []), ("b", []), ("raw", ["--weights", "raw"])):
        cli("sample", str(ids["ddpm"]), "-n", "3", "--steps", "5", "--format", "npz", "--out", str(tmp_path / name), *extra)
    a, b, raw = (np.load(tmp_path / n / "samples.npz")["images"] for n in ("a", "b", "raw"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, raw)


def test_guided_and_unguided_samples_differ(trained, cli, tmp_path):
    store, ids = trained
    for w in ("0", "3"):
        code, _, err = cli("sample", str(ids["cond-ddpm"]), "-n", "4", "--steps", "5", "--guidance", w,
                           "--labels", "1,7", "--format", "npz", "--out", str(tmp_path / w))
        assert code == 0, err
    unguided, guided = (np.load(tmp_path / w / "samples.npz")["images"] for w in ("0", "3"))
    assert not np.array_equal(unguided, guided)


def test_figures_class_grid_strip_eta_grid_interp(trained, cli, tmp_path):
    store, ids = trained
    cond, uncond = str(ids["cond-ddpm"]), str(ids["ddpm"])
    checks = [
        (["grid", cond, "--columns", "3", "--steps", "5"], (10 * 8 + 11 * 2, 3 * 8 + 4 * 2)),  # 10 rows x 3 columns
        (["strip", uncond, "--timesteps", "49,25,0"], (2 * 8 + 3 * 2, 3 * 8 + 4 * 2)),         # x_t row + x0 row
        (["eta-grid", uncond, "--steps", "5", "--etas", "0,0.5,1"], (3 * 8 + 4 * 2, 4 * 8 + 5 * 2)),
        (["interp", uncond, "--steps", "5", "--alphas", "0,0.5,1"], (2 * 8 + 3 * 2, 3 * 8 + 4 * 2)),
    ]
    for i, (args, (h, w)) in enumerate(checks):
        path = tmp_path / f"fig{i}.png"
        code, _, err = cli(*args, "--out", str(path))
        assert code == 0, (args, err)
        assert Image.open(path).size == (w, h), args
    noise = Path(store.get_run(int(uncond)).run_dir) / "noise" / "noise-seed0.pt"
    assert torch.load(noise, weights_only=True).shape == (4, 1, 8, 8)  # saved for reuse with --noise


def test_eta_zero_is_deterministic_and_eta_one_is_not(trained):
    from tuigen.generate.loading import load_trained
    from tuigen.trained.sampling import sample

    store, ids = trained
    _, _, model = load_trained(store, ids["ddpm"])
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    runs = {eta: [sample(model, 3, sampler="ddim", steps=10, eta=eta, noise=noise, seed=s) for s in (1, 2)]
            for eta in (0.0, 1.0)}
    assert np.array_equal(*runs[0.0])
    assert not np.array_equal(*runs[1.0])


def test_fusion_of_a_pair_and_of_a_folder(trained, cli, tmp_path):
    store, ids = trained
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8)).save(src / f"{name}.png")
    code, _, err = cli("fuse", str(ids["ddpm"]), "--a", src / "a.png", "--b", src / "b.png", "--t", "20",
                       "--lam", "0.5", "--out", tmp_path / "one")
    assert code == 0, err
    assert (tmp_path / "one" / "a_b.png").is_file()
    code, _, err = cli("fuse", str(ids["ddpm"]), "--pairs", src, "-n", "3", "--t", "10", "--out", tmp_path / "many")
    assert code == 0, err
    assert 1 <= len(list((tmp_path / "many").glob("*_*.png"))) <= 3


def test_fusion_with_lambda_1_is_the_single_image_path(trained):
    from tuigen.generate.figures import fuse
    from tuigen.generate.loading import load_trained

    store, ids = trained
    _, _, model = load_trained(store, ids["ddpm"])
    g = torch.Generator().manual_seed(0)
    xa, xb = torch.rand(1, 1, 8, 8, generator=g) * 2 - 1, torch.rand(1, 1, 8, 8, generator=g) * 2 - 1
    only_a = fuse(model, xa, xa, 20, 0.5, seed=4)  # mixing A with itself is just A
    torch.testing.assert_close(fuse(model, xa, xb, 20, 1.0, seed=4), only_a)
    torch.testing.assert_close(fuse(model, xa, xb, 20, 0.0, seed=4), fuse(model, xb, xb, 20, 0.5, seed=4))


@pytest.mark.parametrize("args, message", [
    (["sample", "{ddpm}", "--labels", "3"], "unconditional"),
    (["sample", "{cond}", "--labels", "12"], "--labels 12 is not a class"),
    (["sample", "{ddpm}", "--checkpoint", "7"], "no checkpoint at step 7 (saved steps: 15, 30)"),
    (["grid", "{ddpm}"], "not class-conditional"),
    (["fuse", "{ddpm}", "--t", "80", "--a", "x", "--b", "y"], "--t must be in 0..49"),
    (["fuse", "{ddpm}"], "needs --a and --b"),
])
def test_bad_sampling_input_is_a_clear_usage_error(trained, cli, args, message):
    store, ids = trained
    args = [a.format(ddpm=ids["ddpm"], cond=ids["cond-ddpm"]) for a in args]
    code, _, err = cli(*args)
    assert code == 2 and message in err


def test_sampling_a_classifier_run_is_refused(cli, store):
    run = store.create_run("classifier", {})
    code, _, err = cli("sample", str(run.id))
    assert code == 2 and "sampling works on" in err


def test_image_size_that_the_unet_cannot_halve_is_rejected_up_front(cli, store):
    code, _, err = cli("run", "ddpm", "--image_size", "28", "--dim_mults", "1,2,4,8")
    assert code == 2 and "--image_size 28 does not divide by 2^3 = 8" in err
    assert store.list_runs() == []


def test_cond_ddpm_on_multi_hot_shapes_trains_and_samples(cli, store, tmp_path):
    run_id = start(cli, "cond-ddpm", "--dataset", "shapes", "--train_num_steps", "6", "--sample_every", "6")
    run = wait_status(store, run_id, "completed", timeout=120)
    assert run.error is None and store.summary(run_id)["loss"].count == 6
    code, _, err = cli("sample", str(run_id), "-n", "2", "--steps", "3", "--labels", "new_test",
                       "--guidance", "1", "--format", "npz", "--out", tmp_path / "s")
    assert code == 0, err
    assert np.load(tmp_path / "s" / "samples.npz")["images"].shape == (2, 8, 8, 3)


def test_ddpm_resume_gives_the_uninterrupted_loss_curve(cli, store):
    args = ["--dataset", "digits", "--train_num_steps", "400", "--sample_every", "10000",
            "--checkpoint_every", "10000", "--seed", "5", "--channels", "16"]
    reference = start(cli, "ddpm", *args)
    stopped = start(cli, "ddpm", *args)
    run = wait_for(lambda: (r := store.get_run(stopped)).step >= 5 and r, timeout=60, what="training")
    os.kill(run.pid, signal.SIGTERM)
    run = wait_status(store, stopped, "killed", timeout=60)
    assert run.step < 400
    assert cli("resume", str(stopped))[0] == 0
    wait_status(store, stopped, "completed", timeout=180)
    wait_status(store, reference, "completed", timeout=180)
    ref = {p.step: p.value for p in store.metrics(reference, "loss")}
    got = store.metrics(stopped, "loss")
    assert [p.step for p in got] == list(range(1, 401))
    for p in got:
        assert p.value == pytest.approx(ref[p.step], rel=1e-4, abs=1e-6), f"step {p.step}"


def test_evaluator_reaches_its_stated_accuracy_and_is_cached(tmp_path, monkeypatch):
    from tuigen.metrics.evaluators import cache_dir, get_evaluator

    monkeypatch.setenv("TUIGEN_CACHE", str(tmp_path / "cache"))
    ev = get_evaluator("digits", 8)
    assert ev.held_out_accuracy >= 0.95  # stated in README: digits evaluator >= 0.95 held out
    assert len(list(cache_dir().glob("digits-8-1-v*.pt"))) == 1
    again = get_evaluator("digits", 8)
    assert again.held_out_accuracy == ev.held_out_accuracy


def test_accuracy_of_a_conditional_run_is_stored_with_provenance(trained, cli):
    store, ids = trained
    code, out, err = cli("accuracy", str(ids["cond-ddpm"]), "--per_class", "3", "--steps", "3", "--guidance", "1",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert 0.0 <= result["accuracy"] <= 1.0
    score = store.scores(metric="accuracy", run_ids=[ids["cond-ddpm"]])[-1]
    prov = json.loads(score.provenance)
    assert prov["n"] == 30 and prov["guidance"] == 1.0 and prov["labels"] == "balanced-3-per-class"
    assert prov["evaluator"].startswith("digits/size8/ch1")
    code, _, err = cli("accuracy", str(ids["ddpm"]))
    assert code == 2 and "unconditional" in err

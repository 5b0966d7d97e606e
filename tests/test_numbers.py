"""Numbers you can trust (issue 12): declared image ranges, DDIM from a start step, schedules
valid for every T, runs that stop on a non-finite loss, the loss window across a resume."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_in_context, wait_status
from tuigen.config import build, to_json

TINY_DIFFUSION = dict(dataset="digits", image_size=8, channels=8, dim_mults=(1, 2), num_res_blocks=1,
                      attn_resolutions=(), timesteps=20, batch_size=8, sample_steps=3, device="cpu")


def _run(store, config_cls, kind: str, **values):
    cfg = build(config_cls, values)
    run = store.create_run(kind, to_json(cfg), dataset=getattr(cfg, "dataset", ""))
    store.update_run(run.id, status="running")
    return cfg, store.get_run(run.id)


# -- 1. image values have a declared range ----------------------------------------------------
def _constant_half(state: dict) -> None:
    """Make the UNet's output 0.5 everywhere (zero output conv, bias 0.5), raw and EMA weights."""
    for weights in (state["model"], state["ema"]["weights"]):
        weights["conv_out.weight"].zero_()
        weights["conv_out.bias"].fill_(0.5)


def _cells(path: Path) -> set[int]:
    """The pixel values of a PNG, grid padding (white) left out."""
    values = set(np.unique(np.asarray(Image.open(path))).tolist())
    return values - {255}


def test_a_constant_half_in_model_range_is_191_in_samples_fusions_and_grids(store, cli, tmp_path,
                                                                            one_torch_thread):
    from tuigen.experiments.diffusion import CondDDPMConfig
    from tuigen.experiments.diffusion_train import train
    from tuigen.trained.checkpoint import load, save_atomic

    # pred_x0 with a constant output: every sampler ends exactly at x = 0.5, i.e. 191 of 255.
    values = dict(TINY_DIFFUSION, objective="pred_x0", lr=1e-9, num_samples=10, sample_every=2,
                  checkpoint_every=1, ema_every=1)
    cfg, run = _run(store, CondDDPMConfig, "cond-ddpm", train_num_steps=1, **values)
    run_in_context(train, store, cfg, run)
    path = Path(store.artifacts(run.id, kind="checkpoint")[-1].path)
    state = load(path)
    _constant_half(state)
    save_atomic(state, path)
    cfg = dataclasses.replace(cfg, train_num_steps=2)  # resume for one more step: its sample grid
    run_in_context(train, store, cfg, store.get_run(run.id))
    grid = store.artifacts(run.id, kind="image", key="samples")[-1]
    assert grid.step == 2 and _cells(Path(grid.path)) == {191}

    code, _, err = cli("sample", run.id, "-n", "5", "--batch", "2", "--steps", "3", "--format", "both",
                       "--out", tmp_path / "s")
    assert code == 0, err
    images = np.load(tmp_path / "s" / "samples.npz")["images"]
    assert images.shape == (5, 8, 8, 1) and (images == 191).all()  # every image of all three batches
    assert all(_cells(p) == {191} for p in (tmp_path / "s").glob("*.png"))
    code, _, err = cli("grid", run.id, "--columns", "2", "--steps", "3", "--out", tmp_path / "grid.png")
    assert code == 0, err
    assert _cells(tmp_path / "grid.png") == {191}
    Image.fromarray(np.full((8, 8), 40, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((8, 8), 220, np.uint8)).save(tmp_path / "b.png")
    for sampler in ("ddpm", "ddim"):
        code, _, err = cli("fuse", run.id, "--a", tmp_path / "a.png", "--b", tmp_path / "b.png", "--t", "10",
                           "--sampler", sampler, "--steps", "3", "--out", tmp_path / sampler)
        assert code == 0, err
        assert _cells(tmp_path / sampler / "a_b.png") == {191}


def test_float_pixels_without_a_range_are_refused_not_guessed(tmp_path):
    from tuigen.viz.images import save_png, to_uint8

    half = np.full((2, 2, 1), 0.5, np.float32)
    assert to_uint8(half, (-1, 1)).max() == 191 and to_uint8(half, (0, 1)).max() == 128
    with pytest.raises(ValueError, match="value_range"):
        save_png(half, tmp_path / "x.png")
    assert to_uint8(torch.full((1, 2, 2), 7, dtype=torch.uint8)).max() == 7  # uint8 tensors are kept


def test_log_image_reads_floats_in_the_range_it_is_given(store, tmp_path):
    import tuigen

    run = tuigen.init(project="p", config={})
    default = run.log_image("zero_one", np.full((4, 4, 3), 0.5), step=1)
    model = run.log_image("model", np.full((4, 4, 3), 0.5), step=1, value_range=(-1, 1))
    run.finish()
    assert _cells(Path(default)) == {128} and _cells(Path(model)) == {191}


# -- 3. DDIM from an intermediate step starts there --------------------------------------------
def test_ddim_from_a_start_step_evaluates_the_model_there_first():
    from tuigen.models.diffusion import GaussianDiffusion

    d = GaussianDiffusion(1000)
    seen: list[int] = []

    def model(x, t, cond):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    for steps in (1, 7, 50, 500):
        seen.clear()
        d.sample(model, torch.zeros(1, 1, 4, 4), sampler="ddim", steps=steps, start=500)
        assert seen[0] == 500 and seen[-1] == (0 if steps > 1 else 500) and len(seen) == steps, steps
        assert seen == sorted(set(seen), reverse=True)
    assert d.timesteps_for("ddim", 50)[:2] == [980, 960]  # from pure noise: DDIM's uniform skip, unchanged


# -- 4. every schedule is valid for every allowed T --------------------------------------------
@pytest.mark.parametrize("T", [10, 20, 50, 1000, 3000])
def test_every_schedule_is_valid_for_every_allowed_T(T):
    from tuigen.models.choices import SCHEDULES
    from tuigen.models.diffusion import GaussianDiffusion, beta_schedule

    for schedule in SCHEDULES:
        betas = beta_schedule(schedule, T)
        assert ((betas > 0) & (betas < 1)).all(), (schedule, T)
        alpha_bar = GaussianDiffusion(T, schedule).alpha_bar  # as sampling and training use it
        assert (alpha_bar > 0).all() and (alpha_bar[1:] < alpha_bar[:-1]).all(), (schedule, T)


def test_a_run_whose_loss_turns_nonfinite_fails_naming_the_step(cli, store):
    """Through the worker: weight decay of 1e6 at lr 1 makes the weights overflow within steps."""
    code, out, err = cli("run", "classifier", "--dataset", "digits", "--image_size", "8", "--width", "4",
                         "--lr", "1", "--weight_decay", "1e6", "--train_num_steps", "40", "--eval_every", "20",
                         "--json")
    assert code == 0, err
    run = wait_status(store, json.loads(out)["id"], ["completed", "failed"])
    assert run.status == "failed"
    assert "the training loss became NaN or infinite at step " in run.error
    assert not any(a.step and a.step >= 20 for a in store.artifacts(run.id, kind="checkpoint"))


def _diverging(kind: str):
    """(train, config, kind name) of a tiny run of each trainer that diverges to inf/NaN."""
    from tuigen.experiments.dann import DANNConfig
    from tuigen.experiments.dann_train import train as dann_train
    from tuigen.experiments.diffusion import DDPMConfig
    from tuigen.experiments.diffusion_train import train as diffusion_train
    from tuigen.experiments.gan import DCGANConfig
    from tuigen.experiments.gan_train import train as gan_train

    if kind == "ddpm":
        return diffusion_train, DDPMConfig, dict(TINY_DIFFUSION, lr=1, weight_decay=1e6, max_grad_norm=0,
                                                 train_num_steps=30, log_every=30, sample_every=1000)
    if kind == "dann":
        return dann_train, DANNConfig, dict(source="digits", target="mnist", image_size=8, width=4, batch_size=16,
                                            optimizer="sgd", lr=1, lr_anneal=False, weight_decay=1e6,
                                            steps_per_epoch=10, epochs=3, tsne_points=0, device="cpu")
    return gan_train, DCGANConfig, dict(dataset="digits", image_size=8, g_width=4, d_width=4, latent_dim=8,
                                        batch_size=8, train_num_steps=30, log_every=10, sample_every=1000,
                                        collapse_after=0, device="cpu")


@pytest.mark.parametrize("kind", ["ddpm", "dcgan", "dann"])
def test_every_trainer_stops_on_a_nonfinite_loss(store, kind, one_torch_thread):
    train, config_cls, values = _diverging(kind)
    cfg, run = _run(store, config_cls, kind, **values)
    if kind == "dcgan":  # Adam's steps are bounded by lr, which the schema caps at 1: go past it here
        cfg = dataclasses.replace(cfg, lr=1e30)
    from tuigen.experiments.common import NonFiniteLoss

    with pytest.raises(NonFiniteLoss, match=r"at step \d+;"):
        run_in_context(train, store, cfg, run)
    assert not store.artifacts(run.id, kind="checkpoint")  # nothing saved of the broken weights


def test_a_few_bad_steps_may_be_skipped_as_amp_does():
    from tuigen.experiments.common import LossGuard, NonFiniteLoss

    nan, one = torch.tensor(float("nan")), torch.tensor(1.0)
    guard = LossGuard(2, torch.device("cpu"))
    assert [guard.update_ok(v, s) for s, v in enumerate([one, nan, one, nan, one], 1)] == [True, False, True,
                                                                                           False, True]
    with pytest.raises(NonFiniteLoss, match="at step 6; 2 bad step"):
        guard.update_ok(nan, 6)
    strict = LossGuard(0, torch.device("cpu"))
    for s, v in enumerate([one, one, nan, one, nan], 1):
        assert strict.update_ok(v, s)  # nothing read back per step...
    with pytest.raises(NonFiniteLoss, match="at step 3;"):
        strict.check()  # ...the first bad step is named when the loop reads it


# -- 5. the loss window survives a resume ------------------------------------------------------
def test_the_first_loss_logged_after_a_resume_is_the_uninterrupted_one(store, one_torch_thread):
    from tuigen.experiments.diffusion import DDPMConfig
    from tuigen.experiments.diffusion_train import train

    values = dict(TINY_DIFFUSION, train_num_steps=20, log_every=10, sample_every=1000, checkpoint_every=1000,
                  seed=3)
    cfg, reference = _run(store, DDPMConfig, "ddpm", **values)
    run_in_context(train, store, cfg, reference)
    _, stopped = _run(store, DDPMConfig, "ddpm", **values)

    def stop_after_13(ctx):
        ctx._stop_now = lambda: ctx.step >= 13  # as SIGTERM does, once step 13 is done

    ctx = run_in_context(train, store, cfg, stopped, stop_after_13)
    assert ctx.step == 13
    run_in_context(train, store, cfg, store.get_run(stopped.id))
    ref = {p.step: p.value for p in store.metrics(reference.id, "loss")}
    got = {p.step: p.value for p in store.metrics(stopped.id, "loss")}
    assert sorted(got) == [10, 20]
    assert got[20] == pytest.approx(ref[20], rel=1e-6)


# -- 6. one stated board rule; GAN sample sets depend only on the seed -------------------------
def test_a_board_entry_is_the_newest_evaluation_unless_best_and_counts_them(store, cli):
    prov = {"n": 256, "reference": "dataset:mnist", "sampler": "ddim", "steps": 50}
    often = store.create_run("ddpm", json.dumps({"lr": 1e-4}), dataset="mnist")
    once = store.create_run("ddpm", json.dumps({"lr": 3e-4}), dataset="mnist")
    for step, fid in enumerate([31.0, 22.0, 35.0, 27.0, 29.0, 24.0, 33.0, 26.0, 30.0, 28.0], 1):  # noisy draws
        store.add_score(often.id, "fid", fid, prov, step=1000 * step)
    store.add_score(often.id, "fid", 29.5, prov, step=10000)  # the newest checkpoint scored again
    store.add_score(once.id, "fid", 25.0, prov, step=10000)
    code, out, err = cli("board", "--metric", "fid", "--json")
    assert code == 0, err
    board = json.loads(out)
    assert [(r["run_id"], r["value"], r["evaluations"]) for r in board["rows"]] == [(once.id, 25.0, 1),
                                                                                    (often.id, 29.5, 11)]
    assert board["rule"] == "each run's score at its newest evaluated checkpoint"
    code, out, _ = cli("board", "--metric", "fid", "--best", "--json")
    assert [(r["run_id"], r["value"]) for r in json.loads(out)["rows"]] == [(often.id, 22.0), (once.id, 25.0)]
    code, text, _ = cli("board", "--metric", "fid")
    assert "entry: each run's score at its newest evaluated checkpoint (--best" in text
    assert text.splitlines()[4].split()[-1] == "evals" and text.splitlines()[6].split()[-1] == "11"


def test_a_gan_sample_set_depends_only_on_its_seed(one_torch_thread):
    from tuigen.trained.conditioning import Conditioning
    from tuigen.trained.gan import TrainedGAN, build_generator
    from tuigen.trained.provenance import SamplerSettings, sampler_provenance
    from tuigen.trained.sampling import sample

    torch.manual_seed(0)
    args = dict(image_size=8, channels=1, latent_dim=8, width=4, embed_dim=4, cond_kind="none", cond_size=0)
    gan = TrainedGAN(build_generator("dcgan", args).eval(), "dcgan", Conditioning("none", 0, []), (1, 8, 8), 1, "raw",
                     8, torch.device("cpu"))
    assert np.array_equal(sample(gan, 10, batch=3, seed=7), sample(gan, 10, batch=10, seed=7))
    z0, z64 = gan.latents(128, 0), gan.latents(128, 64)
    shared = (z0[:, None, :] == z64[None, :, :]).all(-1)
    assert not shared.any()  # seeds 0 and 64 share no latent (they shared 64 of 128 before)
    assert torch.equal(gan.latents(5, 0, first=3), z0[3:8])
    assert sampler_provenance(gan, SamplerSettings(seed=64))["seed"] == 64


# -- 7. DANN accuracies are scores; cgan runs get an accuracy ----------------------------------
def test_dann_runs_store_target_and_source_validation_accuracy_as_scores(store, cli, one_torch_thread):
    from tuigen.experiments.dann import DANNConfig
    from tuigen.experiments.dann_train import train

    cfg, run = _run(store, DANNConfig, "dann", source="digits", target="mnist", image_size=8, width=4, batch_size=16,
                    steps_per_epoch=3, epochs=2, tsne_points=0, device="cpu")
    run_in_context(train, store, cfg, run)
    for key in ("target_acc", "source_acc"):
        scores = store.scores(metric=key, run_ids=[run.id])
        assert [s.step for s in scores] == [3, 6]
        assert [s.value for s in scores] == [p.value for p in store.metrics(run.id, key)]
        prov = json.loads(scores[0].provenance)
        assert prov["dataset"] == ("mnist" if key == "target_acc" else "digits") and prov["split"] == "held-out"
        assert prov["split_seed"] == 0 and prov["source"] == "digits" and prov["target"] == "mnist"
    code, out, _ = cli("board", "--metric", "target_acc", "--json")
    rows = json.loads(out)["rows"]
    assert [(r["run_id"], r["step"], r["evaluations"]) for r in rows] == [(run.id, 6, 2)]


def test_accuracy_scores_a_cgan_run(store, cli, one_torch_thread):
    from tuigen.experiments.gan import CGANConfig
    from tuigen.experiments.gan_train import train

    cfg, run = _run(store, CGANConfig, "cgan", dataset="digits", image_size=8, g_width=4, d_width=4, latent_dim=8,
                    batch_size=8, train_num_steps=2, sample_every=2, num_samples=10, device="cpu")
    run_in_context(train, store, cfg, run)
    code, out, err = cli("accuracy", run.id, "--per_class", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert 0.0 <= result["accuracy"] <= 1.0
    prov = json.loads(store.scores(metric="accuracy", run_ids=[run.id])[-1].provenance)
    assert prov["sampler"] == "gan" and prov["n"] == 20 and prov["labels"] == "balanced-2-per-class"
    assert prov["evaluator"].startswith("digits/size8/ch1") and prov["seed"] == 0


def test_a_multi_hot_cgan_samples_the_fixed_label_sets(store, one_torch_thread):
    """What accuracy samples for a multi-hot cgan: the fixed shapes test labels, one image each."""
    from tuigen.experiments.gan import CGANConfig
    from tuigen.experiments.gan_train import train
    from tuigen.generate.loading import load_trained
    from tuigen.metrics.evaluators import eval_labels
    from tuigen.trained.sampling import sample

    cfg, run = _run(store, CGANConfig, "cgan", dataset="shapes", image_size=8, g_width=4, d_width=4, latent_dim=8,
                    batch_size=8, train_num_steps=1, sample_every=1, num_samples=8, device="cpu")
    run_in_context(train, store, cfg, run)
    _, _, trained = load_trained(store, run.id)
    labels = eval_labels(trained.cond.kind, trained.cond.size)
    images = sample(trained, len(labels), batch=5, labels=torch.as_tensor(labels))
    assert images.shape == (len(labels), 8, 8, 3) and labels.shape == (len(labels), 24)


def _epochs(store, mode: str, target_acc: list[float], source_acc: list[float], scenario=("mnist", "mnist-m")):
    run = store.create_run("dann", json.dumps({"source": scenario[0], "target": scenario[1], "mode": mode}))
    store.update_run(run.id, status="completed")
    points = [(k, 10 * (i + 1), v, 0.0) for k, values in (("target_acc", target_acc), ("source_acc", source_acc))
              for i, v in enumerate(values)]
    store.log_metrics(run.id, points)
    return run.id


def test_dann_table_never_selects_by_target_labels(store, cli):
    # seeds of one setting: target accuracy peaks mid-training, source validation peaks elsewhere
    a = _epochs(store, "dann", [0.40, 0.60, 0.50], [0.80, 0.90, 0.85])
    b = _epochs(store, "dann", [0.45, 0.70, 0.44], [0.95, 0.90, 0.97])
    c = _epochs(store, "source-only", [0.30, 0.35], [0.90, 0.90])
    code, out, err = cli("dann-table", "--json")
    assert code == 0, err
    table = json.loads(out)
    dann = table["rows"][1]["cells"][0]
    assert table["rule"] == "last" and dann["values"] == [0.50, 0.44] and dann["run_ids"] == [a, b]
    assert dann["value"] == pytest.approx(0.47) and dann["std"] == pytest.approx(np.std([0.50, 0.44], ddof=1))
    assert table["rows"][0]["cells"][0]["values"] == [0.35] and table["rows"][0]["cells"][0]["std"] is None
    code, out, _ = cli("dann-table", "--rule", "best-source-val", "--json")
    cells = json.loads(out)["rows"]
    assert cells[1]["cells"][0]["values"] == [0.60, 0.44] and cells[0]["cells"][0]["values"] == [0.30]  # ties: first
    code, text, _ = cli("dann-table", "--with-ids")
    assert text.splitlines()[0] == "target accuracy at each run's last epoch (rule last); mean ± sd over completed runs"
    assert f"0.4700 ± 0.0424 (n=2; runs {a}, {b})" in text and f"0.3500 (run {c})" in text

"""The GAN kinds (dcgan, cgan, stylegan): model shapes at every supported size, the StyleGAN
parts (demodulation, style mixing, truncation), losses, the mode-collapse check, tiny real
training runs through a real TorchContext and store, exact resume, restore + generate, and
config errors."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import assert_same_curves, curves, python, run_in_context
from tuigen.config import ConfigError, build, to_json
from tuigen.experiments.gan import CGANConfig, DCGANConfig, StyleGANConfig
from tuigen.experiments.gan_train import CollapseWatch, batch_diversity, d_loss_fn, g_loss_fn, train
from tuigen.trained.checkpoint import load
from tuigen.trained.gan import restore
from tuigen.models import dcgan, stylegan

SIZES = (8, 16, 28, 32, 64)
CONFIGS = {"dcgan": DCGANConfig, "cgan": CGANConfig, "stylegan": StyleGANConfig}
TINY = dict(dataset="digits", image_size=16, g_width=8, d_width=8, latent_dim=16, batch_size=16, log_every=1,
            num_samples=16, collapse_after=0, device="cpu")
TINY_STYLE = dict(w_dim=16, mapping_layers=2, r1_every=2, mixing_prob=0.5)
LOSS_KEYS = {"d_loss", "g_loss", "d_x", "d_g_z"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_style_g(size: int = 16, **kw) -> stylegan.Generator:
    torch.manual_seed(0)
    return stylegan.Generator(size, 3, z_dim=8, w_dim=8, mapping_layers=2, width=4, **kw)


# -- models -------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_every_generator_and_discriminator_has_the_right_shapes(size):
    z, y_class, y_multi = torch.randn(4, 8), torch.tensor([0, 3, 9, 1]), (torch.rand(4, 24) < 0.2).float()
    nets = [
        (dcgan.Generator(size, 3, 8, 4), dcgan.Discriminator(size, 3, 4), None),
        (dcgan.Generator(size, 1, 8, 4, "class", 10, 6), dcgan.Discriminator(size, 1, 4, "class", 10, "concat"),
         y_class),
        (dcgan.Generator(size, 3, 8, 4, "multi", 24, 6), dcgan.Discriminator(size, 3, 4, "multi", 24, "projection"),
         y_multi),
    ]
    for g, d, y in nets:
        x = g(z, y)
        assert x.shape == (4, g.net[-2].out_channels, size, size)
        assert x.abs().max() <= 1  # Tanh
        assert d(x, y).shape == (4,)
    g, d = stylegan.Generator(size, 3, 8, 8, 2, 4), stylegan.Discriminator(size, 3, 4)
    x = g(z)
    assert x.shape == (4, 3, size, size) and d(x).shape == (4,)
    assert g.num_ws == 2 * stylegan.start_size(size)[1] + 2


def test_dcgan_is_the_4_2_1_architecture_with_the_papers_widths():
    g, d = dcgan.Generator(64, 3, 100, 64), dcgan.Discriminator(64, 3, 64)
    ups = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in ups] == [512, 256, 128, 64, 3]
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in ups[1:])
    downs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in downs] == [64, 128, 256, 512]
    assert all((m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1)) for m in downs)
    assert not isinstance(d.features[1], torch.nn.BatchNorm2d)  # no BatchNorm on D's input layer
    assert isinstance(g.net[-1], torch.nn.Tanh)
    lrelu = [m for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert lrelu and all(m.negative_slope == 0.2 for m in lrelu)


def test_demodulation_cancels_the_overall_scale_of_a_style():
    torch.manual_seed(0)
    conv = stylegan.ModulatedConv2d(4, 6, 3, w_dim=5)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 5)
    before = conv(x, w)
    with torch.no_grad():  # s -> 3 s: eq. 3 divides it out again
        conv.affine.weight.mul_(3)
        conv.affine.bias.mul_(3)
    torch.testing.assert_close(conv(x, w), before, rtol=1e-4, atol=1e-5)
    assert before.std().item() == pytest.approx(1.0, abs=0.35)  # unit-variance output for unit-variance input


def test_style_mixing_with_identical_sources_equals_the_plain_sample():
    g = tiny_style_g().eval()
    z, other = torch.randn(3, 8), torch.randn(3, 8)
    plain = g(z, noise_mode="const")
    for crossover in range(1, g.num_ws):
        torch.testing.assert_close(g(z, z, crossover, noise_mode="const"), plain)
        assert not torch.allclose(g(z, other, crossover, noise_mode="const"), plain)
    grid = stylegan.mixing_grid(g, z, z)  # row source r == column source r
    assert grid.shape == (16, 3, 16, 16)
    assert torch.equal(grid[0], torch.ones(3, 16, 16))  # the blank corner
    torch.testing.assert_close(grid[1:4], plain)  # column sources along the top
    for r in range(3):
        torch.testing.assert_close(grid[4 * (r + 1)], plain[r])  # row sources down the left
        torch.testing.assert_close(grid[4 * (r + 1) + 1 + r], plain[r])  # the diagonal mixes a source with itself


def test_truncation_psi_zero_gives_the_mean_image_for_any_z():
    g = tiny_style_g().train()
    with torch.no_grad():
        for _ in range(5):
            g.ws(torch.randn(16, 8))  # training forwards track w_avg
    assert g.w_avg.abs().sum() > 0
    g.eval()
    mean_image = g.synthesis(g.w_avg[None, None].expand(1, g.num_ws, -1), "const")
    for seed in (1, 2):
        z = torch.randn(2, 8, generator=torch.Generator().manual_seed(seed))
        out = g(z, truncation_psi=0.0, noise_mode="const")
        torch.testing.assert_close(out, mean_image.expand_as(out))
        assert not torch.allclose(g(z, truncation_psi=1.0, noise_mode="const"), out)


def test_cgan_generator_output_changes_with_the_label():
    torch.manual_seed(0)
    z = torch.randn(2, 8)
    g = dcgan.Generator(16, 1, 8, 4, "class", 10, 6).eval()
    assert not torch.allclose(g(z, torch.tensor([1, 1])), g(z, torch.tensor([7, 7])))
    g = dcgan.Generator(16, 3, 8, 4, "multi", 24, 6).eval()
    a, b = torch.zeros(2, 24), torch.zeros(2, 24)
    a[:, 0], b[:, 5] = 1, 1
    assert not torch.allclose(g(z, a), g(z, b))
    with pytest.raises(ValueError, match="conditional"):
        g(z)


def test_minibatch_stddev_sees_a_batch_without_variety():
    mbstd = stylegan.MinibatchStdDev(4)
    same = mbstd(torch.ones(8, 2, 4, 4))
    varied = mbstd(torch.randn(8, 2, 4, 4))
    assert same.shape == (8, 3, 4, 4) and same[:, 2].max() < 1e-3 and varied[:, 2].min() > 0.3
    assert mbstd(torch.randn(6, 2, 4, 4)).shape == (6, 3, 4, 4)  # 6 is not a multiple of 4: groups of 2


# -- losses and the mode-collapse check -------------------------------------------------------
def test_losses_are_bce_with_logits_and_hinge():
    real, fake = torch.randn(16) * 3, torch.randn(16) * 3
    bce = F.binary_cross_entropy_with_logits
    expected_d = bce(real, torch.ones(16)) + bce(fake, torch.zeros(16))
    torch.testing.assert_close(d_loss_fn("bce", real, fake), expected_d)
    torch.testing.assert_close(g_loss_fn("bce", fake), bce(fake, torch.ones(16)))  # non-saturating
    hinge_d = (1 - real).clamp(min=0).mean() + (1 + fake).clamp(min=0).mean()
    torch.testing.assert_close(d_loss_fn("hinge", real, fake), hinge_d)
    torch.testing.assert_close(g_loss_fn("hinge", fake), -fake.mean())
    huge = torch.tensor([200.0, -200.0])
    assert torch.isfinite(d_loss_fn("bce", huge, -huge)) and torch.isfinite(g_loss_fn("bce", -huge))


def test_mode_collapse_check_fires_once_on_a_constant_generator_and_not_on_real_data():
    from tuigen.data import load_dataset
    from tuigen.models.pixels import to_float

    reals = to_float(torch.from_numpy(load_dataset("digits", 16).images))
    ref = batch_diversity(reals[:64])
    constant = torch.zeros(64, 1, 16, 16) + reals[0]  # a collapsed generator: one image, every z
    assert batch_diversity(constant) == 0.0
    watch = CollapseWatch(0.3)
    assert watch.check(batch_diversity(reals[64:128]) / ref, 100) is None  # real data is as varied as itself
    message = watch.check(batch_diversity(constant) / ref, 200)
    assert message and message.startswith("possible mode collapse at step 200")
    assert watch.check(0.0, 300) is None  # once, not at every check
    late = CollapseWatch(0.3, after=1000)
    assert late.check(0.0, 500) is None and late.check(0.0, 1000)


# -- tiny real runs ---------------------------------------------------------------------------
def make_run(store, kind: str, **values):
    cfg = build(CONFIGS[kind], {**TINY, **(TINY_STYLE if kind == "stylegan" else {}), **values})
    run = store.create_run(kind, to_json(cfg), dataset=cfg.dataset)
    store.update_run(run.id, status="running")
    return cfg, run


def run_train(store, cfg, run, ctx_hook=None):
    return run_in_context(train, store, cfg, run, ctx_hook, start=True)




@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_a_tiny_dcgan_run_logs_losses_grids_checkpoints_and_both_architectures(store, loss):
    cfg, run = make_run(store, "dcgan", loss=loss, train_num_steps=12, sample_every=6, checkpoint_every=6)
    ctx = run_train(store, cfg, run)
    assert ctx.step == 12
    got = curves(store, run.id)
    for key in LOSS_KEYS | {"images_per_s"}:
        assert sorted(got[key]) == list(range(1, 13)), key
        assert all(math.isfinite(v) for v in got[key].values()), key
    if loss == "bce":
        assert all(0 < got[k][s] < 1 for k in ("d_x", "d_g_z") for s in got[k])  # probabilities
    assert sorted(got["diversity_ratio"]) == [6, 12] and "r1" not in got
    grids = store.artifacts(run.id, kind="image", key="samples")
    assert [a.step for a in grids] == [6, 12]
    assert Image.open(grids[-1].path).size == (4 * 16 + 5 * 2,) * 2  # 16 fixed-noise samples, 4 x 4
    assert [a.step for a in store.artifacts(run.id, kind="image", key="reals")] == [0]
    assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [6, 12]
    [summary] = store.artifacts(run.id, kind="text", key="model_summary")
    text = Path(summary.path).read_text()
    assert "Generator" in text and "Discriminator" in text and "ConvTranspose2d" in text and "BatchNorm2d" in text


def test_a_tiny_cgan_run_on_multi_hot_labels_with_a_projection_discriminator(store):
    cfg, run = make_run(store, "cgan", dataset="shapes", d_cond="projection", train_num_steps=4, sample_every=4,
                        checkpoint_every=4)
    run_train(store, cfg, run)
    got = curves(store, run.id)
    assert all(sorted(got[k]) == [1, 2, 3, 4] for k in LOSS_KEYS)
    state = torch.load(Path(run.run_dir, "checkpoints", "ckpt-0000004.pt"), weights_only=True)
    assert state["cond_kind"] == "multi" and state["cond_size"] == 24 and "label_proj.table.weight" in state["d"]


def test_a_stylegan_run_draws_the_three_pictures_and_logs_r1(store):
    cfg, run = make_run(store, "stylegan", train_num_steps=4, sample_every=4, checkpoint_every=4)
    run_train(store, cfg, run)
    got = curves(store, run.id)
    assert sorted(got["r1"]) == [2, 4] and all(v >= 0 for v in got["r1"].values())
    assert all(sorted(got[k]) == [1, 2, 3, 4] for k in LOSS_KEYS)
    keys = {a.key: a for a in store.artifacts(run.id, kind="image")}
    assert {"samples", "samples_ema", "style_mixing", "reals"} <= set(keys)
    assert Image.open(keys["style_mixing"].path).size == (5 * 16 + 6 * 2,) * 2  # (4 + 1) x (4 + 1)
    text = Path(store.artifacts(run.id, kind="text", key="model_summary")[0].path).read_text()
    assert "MappingNetwork" in text and "StyledConv" in text and "ResBlock" in text and "MinibatchStdDev" in text


def test_the_collapse_warning_is_an_event_logged_once(store):
    cfg, run = make_run(store, "dcgan", train_num_steps=6, sample_every=2, checkpoint_every=100,
                        collapse_ratio=1.0)  # any generator is "less varied than 1x the reals"
    run_train(store, cfg, run)
    warnings = [e for e in store.events(run.id) if e.level == "warning"]
    assert len(warnings) == 1 and "possible mode collapse at step 2" in warnings[0].message
    assert sorted(curves(store, run.id)["diversity_ratio"]) == [2, 4, 6]


@pytest.mark.parametrize("kind, extra", [
    ("dcgan", {}),
    ("cgan", {"log_every": 2, "d_steps": 2, "loss": "hinge"}),  # stopped mid-window: the averages carry over
    ("stylegan", {"hflip": True}),
])
def test_a_stopped_run_resumes_on_the_uninterrupted_curve(store, kind, extra):
    values = dict(train_num_steps=8, sample_every=3, checkpoint_every=100, seed=3, **extra)
    cfg, reference = make_run(store, kind, **values)
    run_train(store, cfg, reference)

    cfg, run = make_run(store, kind, **values)

    def stop_after_step_5(ctx):
        steps = ctx.steps

        def stopping(start, total):
            for s in steps(start, total):
                yield s
                if s == 5:
                    ctx.request_stop()  # as SIGTERM does, once step 5 is done
        ctx.steps = stopping

    ctx = run_train(store, cfg, run, stop_after_step_5)
    assert ctx.step == 5
    assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [5]
    ctx = run_train(store, cfg, run)  # a fresh context, as the worker makes on `tuigen resume`
    assert ctx.step == 8
    assert any("resumed from checkpoint at step 5" in e.message for e in store.events(run.id))
    assert_same_curves(store, reference.id, run.id)


# -- restore and generate ---------------------------------------------------------------------
def latest(run) -> str:
    return str(sorted(Path(run.run_dir, "checkpoints").glob("ckpt-*.pt"))[-1])


def test_restore_generates_batched_reproducible_images_from_ema_or_raw_weights(store):
    cfg, run = make_run(store, "stylegan", train_num_steps=3, sample_every=100, checkpoint_every=100)
    run_train(store, cfg, run)
    ema = restore(cfg, load(latest(run)))
    assert (ema.weights, ema.step, ema.image_shape, ema.cond.kind) == ("ema", 3, (1, 16, 16), "none")
    a = ema.generate(5, seed=7, batch_size=2)
    assert a.shape == (5, 1, 16, 16) and a.device.type == "cpu" and a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, ema.generate(5, seed=7, batch_size=5))  # same images, any batch size
    assert not torch.allclose(a, ema.generate(5, seed=8))
    raw = restore(cfg, load(latest(run)), weights="raw")
    assert raw.weights == "raw" and not torch.allclose(raw.generate(5, seed=7), a)
    mean = ema.generate(4, seed=1, truncation_psi=0.0)
    assert torch.allclose(mean, mean[:1].expand_as(mean))  # psi 0: the mean image for every z
    assert ema.mixing_grid(seed=0, rows=2, cols=3).shape == (12, 1, 16, 16)
    assert ema.generate(0).shape == (0, 1, 16, 16)


def test_restored_cgan_follows_its_labels_and_dcgan_has_no_ema(store):
    cfg, run = make_run(store, "cgan", train_num_steps=2, sample_every=100, checkpoint_every=100)
    run_train(store, cfg, run)
    g = restore(cfg, load(latest(run)))
    assert g.weights == "raw" and g.cond.kind == "class" and g.cond.size == 10  # no EMA for (c)DCGAN
    ones, sevens = g.generate(4, torch.tensor([1]), seed=0), g.generate(4, torch.full((4,), 7), seed=0)
    assert ones.shape == (4, 1, 16, 16) and not torch.allclose(ones, sevens)
    for bad, message in ((None, "conditional"), (torch.tensor([12]), "0..9"), (torch.tensor([1, 2]), "2 labels")):
        with pytest.raises(ValueError, match=message):
            g.generate(4, bad)
    with pytest.raises(ValueError, match="stylegan"):
        g.generate(2, torch.tensor([1]), truncation_psi=0.5)


# -- configs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_image_size_must_be_8_times_a_power_of_two_or_28(kind):
    for good in (8, 16, 28, 32, 64, 128, 256):
        assert build(CONFIGS[kind], {"image_size": good}).image_size == good
    for bad in (24, 48, 30, 12):
        with pytest.raises(ConfigError, match="--image_size") as e:
            build(CONFIGS[kind], {"image_size": bad})
        assert f"got {bad}" in str(e.value) and "8 x 2^k" in str(e.value)
    with pytest.raises(ConfigError, match="--image_size must be >= 8"):
        build(CONFIGS[kind], {"image_size": 4})


def test_defaults_are_the_researchers_values():
    d, s = build(DCGANConfig), build(StyleGANConfig)
    assert (d.image_size, d.batch_size, d.lr, d.beta1, d.beta2, d.latent_dim, d.loss, d.d_steps) == \
        (64, 32, 2e-4, 0.5, 0.999, 100, "bce", 1)
    assert (s.image_size, s.lr, s.beta1, s.beta2, s.r1_gamma, s.r1_every, s.mixing_prob, s.truncation) == \
        (64, 2.5e-3, 0.0, 0.99, 10.0, 16, 0.9, 1.0)
    with pytest.raises(ConfigError, match="--loss must be one of bce, hinge"):
        build(DCGANConfig, {"loss": "wgan"})
    with pytest.raises(ConfigError, match="--d_cond must be one of concat, projection"):
        build(CGANConfig, {"d_cond": "add"})


def test_gan_configs_import_without_torch():
    res = python("import sys, tuigen.experiments.gan\nprint('torch' in sys.modules)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"

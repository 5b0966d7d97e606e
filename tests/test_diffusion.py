"""Gaussian diffusion maths, checked against closed forms and against diffusers' schedulers."""
from __future__ import annotations

import pytest
import torch

from tuigen.models.diffusion import SCHEDULES, GaussianDiffusion, beta_schedule, lerp, mix_noised, slerp

diffusers = pytest.importorskip("diffusers")


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [50, 1000, 3000])
def test_every_schedule_is_monotone_and_in_range(name, T):
    betas = beta_schedule(name, T)
    assert betas.shape == (T,) and bool((betas > 0).all()) and bool((betas < 1).all())
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert bool((alpha_bar[1:] < alpha_bar[:-1]).all()), "alpha_bar must strictly decrease"
    assert alpha_bar[0] > 0.9 and alpha_bar[-1] < 0.05  # starts near data, ends near noise


@pytest.mark.parametrize("T", [1000, 200])
def test_linear_and_quadratic_match_diffusers(T):
    s = 1000 / T
    lin = diffusers.DDPMScheduler(num_train_timesteps=T, beta_start=1e-4 * s, beta_end=0.02 * s, beta_schedule="linear")
    quad = diffusers.DDPMScheduler(num_train_timesteps=T, beta_start=1e-4 * s, beta_end=0.02 * s,
                                   beta_schedule="scaled_linear")
    torch.testing.assert_close(beta_schedule("linear", T).float(), lin.betas.float(), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(beta_schedule("quadratic", T).float(), quad.betas.float(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("T", [1000, 200])
def test_cosine_matches_diffusers(T):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    torch.testing.assert_close(beta_schedule("cosine", T).float(), ref.betas.float(), rtol=1e-5, atol=1e-7)


def test_q_sample_matches_the_closed_form_and_diffusers():
    d = GaussianDiffusion(1000, "linear")
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 3, 8, 8, generator=g).clamp(-1, 1), torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 10, 250, 500, 999])
    ab = torch.cumprod(1 - beta_schedule("linear", 1000), 0)[t].float().view(-1, 1, 1, 1)
    torch.testing.assert_close(d.q_sample(x0, t, eps), ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    torch.testing.assert_close(d.q_sample(x0, t, eps), ref.add_noise(x0, eps, t), rtol=1e-5, atol=1e-5)


def test_q_sample_has_the_right_marginal_statistics():
    d = GaussianDiffusion(1000, "cosine")
    x0 = torch.full((20000, 1), 0.5)
    t = torch.full((20000,), 300)
    x_t = d.q_sample(x0, t)
    ab = d.alpha_bar[300]
    assert x_t.mean().item() == pytest.approx(ab.sqrt().item() * 0.5, abs=0.02)
    assert x_t.var().item() == pytest.approx(1 - ab.item(), abs=0.03)


@pytest.mark.parametrize("t", [999, 500, 1])
def test_ddpm_posterior_step_matches_diffusers(t):
    d = GaussianDiffusion(1000, "linear")
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=True)
    g = torch.Generator().manual_seed(1)
    x_t, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    tt = torch.full((4,), t)
    x0 = d.x0_from_eps(x_t, tt, eps).clamp(-1, 1)
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
    ours = d.ddpm_step(x_t, tt, x0, noise)
    theirs = ref.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("t", [980, 500, 20, 0])
def test_ddim_step_matches_diffusers(eta, t):
    d = GaussianDiffusion(1000, "linear")
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=True, set_alpha_to_one=True)
    ref.set_timesteps(50)  # stride 20: t -> t - 20, and 0 -> the clean end of the chain
    g = torch.Generator().manual_seed(2)
    x_t, eps_raw = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    noise = torch.randn(4, 3, 8, 8, generator=g)
    tt = torch.full((4,), t)
    x0 = d.x0_from_eps(x_t, tt, eps_raw).clamp(-1, 1)
    eps = d.eps_from_x0(x_t, tt, x0)  # our samplers keep eps consistent with the clipped x0
    ours = d.ddim_step(x_t, tt, tt - 20, eps, x0, eta, noise)
    theirs = ref.step(eps_raw, t, x_t, eta=eta, use_clipped_model_output=True, variance_noise=noise).prev_sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_ddim_eta_1_over_all_steps_has_ddpm_variance_and_step():
    d = GaussianDiffusion(200, "cosine")
    t = torch.arange(1, 200)
    torch.testing.assert_close(d.ddim_sigma(t, t - 1, 1.0) ** 2, d.posterior_var[1:], rtol=1e-4, atol=1e-9)
    g = torch.Generator().manual_seed(3)
    x_t, x0, z = torch.randn(5, 2, 4, 4, generator=g), torch.randn(5, 2, 4, 4, generator=g).clamp(-1, 1), torch.randn(5, 2, 4, 4, generator=g)
    tt = torch.tensor([1, 10, 50, 120, 199])
    eps = d.eps_from_x0(x_t, tt, x0)
    torch.testing.assert_close(d.ddim_step(x_t, tt, tt - 1, eps, x0, 1.0, z), d.ddpm_step(x_t, tt, x0, z),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x0", "pred_v"])
def test_prediction_conversions_are_inverse(objective):
    d = GaussianDiffusion(100, "linear", objective)
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    t = torch.tensor([5, 50, 99])
    x_t = d.q_sample(x0, t, eps)
    torch.testing.assert_close(d.x0_from_eps(x_t, t, eps), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.x0_from_v(x_t, t, d.v_target(x0, t, eps)), x0, rtol=1e-4, atol=1e-4)
    oracle = {"pred_noise": eps, "pred_x0": x0, "pred_v": d.v_target(x0, t, eps)}[objective]
    got_eps, got_x0 = d.predict(lambda x, tt, c: oracle, x_t, t, clip_x0=False)
    torch.testing.assert_close(got_x0, x0, rtol=1e-3, atol=1e-3)
    assert d.loss(lambda x, tt, c: oracle, x0, t=t, noise=eps).item() < 1e-8  # a perfect model has zero loss


def test_min_snr_weights():
    d = GaussianDiffusion(1000, "linear", "pred_noise", min_snr_gamma=5.0)
    t = torch.arange(0, 1000, 50)
    w = d.loss_weight(t)
    snr = d.snr[t]
    torch.testing.assert_close(w, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert bool((w <= 1 + 1e-6).all()) and w[0] < 0.01 and w[-1] == pytest.approx(1.0)
    assert bool((GaussianDiffusion(1000).loss_weight(t) == 1).all())


def test_ddim_timesteps_are_evenly_spaced_and_descending():
    d = GaussianDiffusion(1000)
    ts = d.timesteps_for("ddim", 50)
    assert len(ts) == 50 and ts[0] == 980 and ts[-1] == 0 and ts == sorted(ts, reverse=True)
    assert d.timesteps_for("ddpm", 50) == list(range(999, -1, -1))
    assert d.timesteps_for("ddim", 10, start=499)[0] <= 499


def test_slerp_and_lerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(5)
    z0, z1 = torch.randn(1, 3, 16, 16, generator=g), torch.randn(1, 3, 16, 16, generator=g)
    for f in (slerp, lerp):
        torch.testing.assert_close(f(z0, z1, 0.0), z0)
        torch.testing.assert_close(f(z0, z1, 1.0), z1, rtol=1e-5, atol=1e-5)
    # Gaussian noise lives near a sphere: slerp stays there, lerp cuts through the middle.
    mid_s, mid_l = slerp(z0, z1, 0.5).norm(), lerp(z0, z1, 0.5).norm()
    assert mid_s.item() == pytest.approx(z0.norm().item(), rel=0.05)
    assert mid_l < 0.8 * mid_s


def test_fusion_mix_with_lambda_1_or_0_is_the_single_image_path():
    d = GaussianDiffusion(100)
    g = torch.Generator().manual_seed(6)
    xa, xb, eps = (torch.randn(2, 1, 8, 8, generator=g) for _ in range(3))
    t = torch.full((2,), 40)
    torch.testing.assert_close(mix_noised(d, xa, xb, 40, 1.0, eps), d.q_sample(xa, t, eps))
    torch.testing.assert_close(mix_noised(d, xa, xb, 40, 0.0, eps), d.q_sample(xb, t, eps))


def test_ema_warms_up_then_averages_and_resumes():
    from torch import nn

    from tuigen.models.ema import EMA

    model = nn.Linear(4, 4)
    ema = EMA(model, decay=0.999, every=1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for step in range(1, 51):
        ema.update(model, step)
    # Without warm-up the average would still be 95% initial weights (0.999^50); with it, it follows.
    assert torch.allclose(ema.model.weight, torch.ones(4, 4), atol=0.05)
    assert ema.current_decay() == pytest.approx(51 / 60)
    again = EMA(model, decay=0.999, every=1)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 50 and torch.equal(again.model.weight, ema.model.weight)
    skipped = EMA(model, decay=0.5, every=10)
    skipped.update(model, 7)
    assert skipped.updates == 0  # only every 10th step


def test_ema_loads_bare_weights_from_older_checkpoints():
    from torch import nn

    from tuigen.models.ema import EMA

    old_style = nn.Linear(2, 2).state_dict()
    ema = EMA(nn.Linear(2, 2))
    ema.load_state_dict(old_style)
    assert torch.equal(ema.model.weight, old_style["weight"]) and ema.current_decay() == ema.decay

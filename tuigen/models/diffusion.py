"""Gaussian diffusion: noise schedules, the forward process, the training loss, and the
DDPM and DDIM samplers.

Separate from the network (diffusers' scheduler/UNet split): every sampler here takes any
`eps_model(x_t, t, cond) -> prediction`. Symbols follow the papers:

  DDPM  Ho et al. 2020, "Denoising Diffusion Probabilistic Models"
  IDDPM Nichol & Dhariwal 2021, "Improved DDPM" (cosine schedule)
  DDIM  Song et al. 2021, "Denoising Diffusion Implicit Models"
  v     Salimans & Ho 2022, "Progressive Distillation" (v-prediction)
  MinSNR Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting"
  CFG   Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"

Conventions: images live in [-1, 1]; t is 0-based (t = 0 is the first noising step,
T - 1 the last); alpha_bar[t] = prod_{s <= t} (1 - beta_s).
Guidance: eps = (1 + w) * eps(x, c) - w * eps(x, null); w = 0 is unguided (CFG eq. 6).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from .choices import OBJECTIVES, SCHEDULES

EpsModel = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


# -- noise schedules ----------------------------------------------------------------------
MAX_BETA = 0.999  # IDDPM's clip: no step destroys the signal outright, so alpha_bar stays > 0


def beta_schedule(name: str, timesteps: int) -> Tensor:
    """beta_1..beta_T in float64, each in (0, MAX_BETA]. Linear and quadratic are scaled by
    1000/T so any T spans the same signal-to-noise range as the DDPM paper's T = 1000; for
    T <= 20 that scaling passes 1, and those betas are clipped at MAX_BETA as IDDPM clips."""
    T = timesteps
    scale = 1000.0 / T
    if name == "linear":  # DDPM sec. 4: beta from 1e-4 to 0.02
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=MAX_BETA)
    if name == "quadratic":  # linear in sqrt(beta) ("scaled_linear" in diffusers)
        betas = torch.linspace(math.sqrt(scale * 1e-4), math.sqrt(scale * 0.02), T, dtype=torch.float64) ** 2
        return betas.clamp(max=MAX_BETA)
    if name == "cosine":  # IDDPM eq. 17, s = 0.008, betas clipped at 0.999
        return _betas_from_alpha_bar(lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2, T)
    if name == "sigmoid":  # alpha_bar follows a sigmoid from -3 to 3 (Jabri et al. 2022)
        lo, hi = torch.sigmoid(torch.tensor(-3.0, dtype=torch.float64)), torch.sigmoid(torch.tensor(3.0, dtype=torch.float64))
        return _betas_from_alpha_bar(lambda u: float((hi - torch.sigmoid(torch.tensor(u * 6 - 3, dtype=torch.float64))) / (hi - lo)), T)
    raise ValueError(f"beta_schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")


def _betas_from_alpha_bar(alpha_bar: Callable[[float], float], T: int, max_beta: float = MAX_BETA) -> Tensor:
    # beta_t = 1 - alpha_bar(t / T) / alpha_bar((t - 1) / T)  (IDDPM eq. 17 rearranged)
    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float64)


def _gather(a: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """a[t] shaped to broadcast over an image batch like `like`."""
    return a.gather(0, t).to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


@dataclass
class SamplerStep:
    """What one reverse step saw: for denoising strips."""

    t: int
    x_t: Tensor
    x0_pred: Tensor


class GaussianDiffusion:
    """The fixed forward process q and the reverse-process maths for one schedule."""

    def __init__(self, timesteps: int = 1000, schedule: str = "linear", objective: str = "pred_noise",
                 min_snr_gamma: float = 0.0, device: torch.device | str = "cpu"):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        self.T, self.schedule, self.objective, self.min_snr_gamma = timesteps, schedule, objective, min_snr_gamma
        betas = beta_schedule(schedule, timesteps)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = F.pad(alpha_bar[:-1], (1, 0), value=1.0)
        # DDPM eq. 7: q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I)
        posterior_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        tensors = dict(
            betas=betas, alphas=alphas, alpha_bar=alpha_bar, alpha_bar_prev=alpha_bar_prev,
            sqrt_alpha_bar=alpha_bar.sqrt(), sqrt_one_minus_alpha_bar=(1.0 - alpha_bar).sqrt(),
            sqrt_recip_alpha_bar=(1.0 / alpha_bar).sqrt(), sqrt_recipm1_alpha_bar=(1.0 / alpha_bar - 1).sqrt(),
            posterior_var=posterior_var,
            # beta~_0 is 0: clip the log to beta~_1 as DDPM's code does
            posterior_log_var=torch.log(torch.cat([posterior_var[1:2], posterior_var[1:]])),
            posterior_mean_coef1=betas * alpha_bar_prev.sqrt() / (1.0 - alpha_bar),
            posterior_mean_coef2=(1.0 - alpha_bar_prev) * alphas.sqrt() / (1.0 - alpha_bar),
            snr=alpha_bar / (1.0 - alpha_bar),
        )
        # Computed in float64 for accuracy, kept in float32 for speed.
        for k, v in tensors.items():
            setattr(self, k, v.to(torch.float32).to(device))

    def to(self, device) -> "GaussianDiffusion":
        for k, v in list(vars(self).items()):
            if isinstance(v, Tensor):
                setattr(self, k, v.to(device))
        return self

    # -- forward process ------------------------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps  (DDPM eq. 4)."""
        noise = torch.randn_like(x0) if noise is None else noise
        return _gather(self.sqrt_alpha_bar, t, x0) * x0 + _gather(self.sqrt_one_minus_alpha_bar, t, x0) * noise

    # -- converting between predictions ---------------------------------------------------
    def x0_from_eps(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        # x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)  (DDPM eq. 4 solved for x_0)
        return _gather(self.sqrt_recip_alpha_bar, t, x_t) * x_t - _gather(self.sqrt_recipm1_alpha_bar, t, x_t) * eps

    def eps_from_x0(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        return (_gather(self.sqrt_recip_alpha_bar, t, x_t) * x_t - x0) / _gather(self.sqrt_recipm1_alpha_bar, t, x_t)

    def v_target(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        # v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0  (v-prediction, sec. 4)
        return _gather(self.sqrt_alpha_bar, t, x0) * eps - _gather(self.sqrt_one_minus_alpha_bar, t, x0) * x0

    def x0_from_v(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        return _gather(self.sqrt_alpha_bar, t, x_t) * x_t - _gather(self.sqrt_one_minus_alpha_bar, t, x_t) * v

    # -- training -------------------------------------------------------------------------
    def loss(self, model: EpsModel, x0: Tensor, cond: Tensor | None = None, t: Tensor | None = None,
             noise: Tensor | None = None) -> Tensor:
        """The simple loss of DDPM eq. 14 for the chosen objective, optionally Min-SNR weighted."""
        n = x0.shape[0]
        t = torch.randint(0, self.T, (n,), device=x0.device) if t is None else t
        noise = torch.randn_like(x0) if noise is None else noise
        x_t = self.q_sample(x0, t, noise)
        pred = model(x_t, t, cond)
        target = {"pred_noise": noise, "pred_x0": x0, "pred_v": None}[self.objective]
        if target is None:
            target = self.v_target(x0, t, noise)
        per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=tuple(range(1, x0.dim())))
        return (per_sample * self.loss_weight(t)).mean()

    def loss_weight(self, t: Tensor) -> Tensor:
        """Min-SNR-gamma weights (Hang et al. eq. 9), expressed for each objective; 1 when off."""
        if not self.min_snr_gamma:
            return torch.ones_like(t, dtype=torch.float32)
        snr = self.snr.gather(0, t)
        clipped = snr.clamp(max=self.min_snr_gamma)
        return {"pred_noise": clipped / snr, "pred_x0": clipped, "pred_v": clipped / (snr + 1)}[self.objective]

    # -- one network evaluation, with guidance ---------------------------------------------
    def predict(self, model: EpsModel, x_t: Tensor, t: Tensor, cond: Tensor | None = None,
                null_cond: Tensor | None = None, guidance: float = 0.0, clip_x0: bool = True) -> tuple[Tensor, Tensor]:
        """(eps, x0) predicted at x_t. With guidance w != 0 the conditional and unconditional
        passes run as one batch: eps = (1 + w) eps_cond - w eps_uncond (CFG eq. 6)."""
        if guidance and cond is not None:
            out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, null_cond]))
            cond_out, uncond_out = out.float().chunk(2)
            out = (1 + guidance) * cond_out - guidance * uncond_out
        else:
            out = model(x_t, t, cond).float()
        if self.objective == "pred_noise":
            eps, x0 = out, self.x0_from_eps(x_t, t, out)
        elif self.objective == "pred_x0":
            x0 = out
            eps = self.eps_from_x0(x_t, t, x0)
        else:
            x0 = self.x0_from_v(x_t, t, out)
            eps = self.eps_from_x0(x_t, t, x0)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
            eps = self.eps_from_x0(x_t, t, x0)  # keep eps consistent with the clipped x0
        return eps, x0

    # -- reverse steps ---------------------------------------------------------------------
    def ddpm_step(self, x_t: Tensor, t: Tensor, x0: Tensor, noise: Tensor) -> Tensor:
        """Ancestral step x_t -> x_{t-1}: posterior mean (DDPM eq. 7) plus sigma_t z, z = 0 at t = 0."""
        mean = _gather(self.posterior_mean_coef1, t, x_t) * x0 + _gather(self.posterior_mean_coef2, t, x_t) * x_t
        sigma = (0.5 * _gather(self.posterior_log_var, t, x_t)).exp()
        nonzero = (t > 0).to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
        return mean + nonzero * sigma * noise

    def ddim_sigma(self, t: Tensor, t_prev: Tensor, eta: float) -> Tensor:
        """sigma_t(eta) of DDIM eq. 16; eta = 1 gives DDPM's posterior variance beta~_t."""
        a, a_prev = self.alpha_bar.gather(0, t), self._alpha_bar_at(t_prev)
        return eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()

    def ddim_step(self, x_t: Tensor, t: Tensor, t_prev: Tensor, eps: Tensor, x0: Tensor, eta: float,
                  noise: Tensor | None = None) -> Tensor:
        """x_{t_prev} = sqrt(alpha_bar_prev) x0 + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z
        (DDIM eq. 12). t_prev = -1 means the end of the chain (alpha_bar = 1)."""
        shape = (-1, *([1] * (x_t.dim() - 1)))
        a_prev = self._alpha_bar_at(t_prev).view(shape)
        sigma = self.ddim_sigma(t, t_prev, eta).view(shape)
        direction = (1 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        x_prev = a_prev.sqrt() * x0 + direction
        if eta > 0:
            x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
        return x_prev

    def _alpha_bar_at(self, t: Tensor) -> Tensor:
        """alpha_bar[t], with alpha_bar[-1] = 1 (the clean image at the end of the chain)."""
        return torch.where(t >= 0, self.alpha_bar.gather(0, t.clamp(min=0)), torch.ones_like(t, dtype=self.alpha_bar.dtype))

    # -- sampling loops --------------------------------------------------------------------
    def timesteps_for(self, sampler: str, steps: int | None, start: int | None = None) -> list[int]:
        """The t values visited, from high to low. From pure noise, DDIM takes `steps` values
        evenly spaced over [0, T) (its uniform skip, round(i T / S)). From an image noised to
        `start` (fusion, strips), the chain begins exactly there and spaces `steps` values
        evenly over [0, start], both ends included."""
        top = self.T - 1 if start is None else start
        if sampler == "ddpm" or not steps or steps >= top + 1:
            return list(range(top, -1, -1))
        if start is None:
            stride = (top + 1) / steps
            return sorted({int(round(i * stride)) for i in range(steps)}, reverse=True)
        stride = start / max(steps - 1, 1)
        return sorted({int(round(start - i * stride)) for i in range(steps)}, reverse=True)

    @torch.no_grad()
    def sample(self, model: EpsModel, x_T: Tensor, *, sampler: str = "ddpm", steps: int | None = None,
               eta: float = 0.0, cond: Tensor | None = None, null_cond: Tensor | None = None,
               guidance: float = 0.0, start: int | None = None, record: Iterable[int] = (),
               generator: torch.Generator | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[Tensor, list[SamplerStep]]:
        """Run the reverse chain from x_T (or from x_start at t = start, for fusion).

        sampler 'ddpm' is ancestral sampling over every t; 'ddim' visits `steps` t values
        with noise scale eta (0 deterministic, 1 DDPM-like). `record` lists the t values whose
        x_t and predicted x_0 are returned, for denoising strips.
        """
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler must be ddpm or ddim, got {sampler!r}")
        ts = self.timesteps_for(sampler, steps, start)
        wanted, trace = set(record), []
        x = x_T
        n = x.shape[0]
        for i, t_int in enumerate(ts):
            t = torch.full((n,), t_int, device=x.device, dtype=torch.long)
            eps, x0 = self.predict(model, x, t, cond, null_cond, guidance)
            if t_int in wanted:
                trace.append(SamplerStep(t_int, x.detach().cpu(), x0.detach().cpu()))
            # DDIM at eta 0 adds no noise: drawing none keeps the generator for the next batch's x_T,
            # so a seed gives the same images at any batch size
            z = _randn(x, generator) if sampler == "ddpm" or eta > 0 else None
            if sampler == "ddpm":
                x = self.ddpm_step(x, t, x0, z)
            else:
                t_prev = torch.full_like(t, ts[i + 1] if i + 1 < len(ts) else -1)
                x = self.ddim_step(x, t, t_prev, eps, x0, eta, z)
            if progress:
                progress(i + 1, len(ts))
        return x.clamp(-1.0, 1.0), trace


def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.randn_like(like)
    z = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    if like.device.type == "cuda" and z.device.type == "cpu":  # pinned: the copy does not wait for the GPU
        return z.pin_memory().to(like.device, non_blocking=True)
    return z.to(like.device)


# -- latent interpolation (DDIM sec. 5.3) ---------------------------------------------------
def slerp(z0: Tensor, z1: Tensor, alpha: float) -> Tensor:
    """Spherical interpolation: keeps the norm that Gaussian noise concentrates at."""
    a, b = z0.flatten(), z1.flatten()
    theta = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1.0, 1.0))
    if theta.abs() < 1e-6:
        return lerp(z0, z1, alpha)
    return (torch.sin((1 - alpha) * theta) * z0 + torch.sin(alpha * theta) * z1) / torch.sin(theta)


def lerp(z0: Tensor, z1: Tensor, alpha: float) -> Tensor:
    return (1 - alpha) * z0 + alpha * z1


def mix_noised(diffusion: GaussianDiffusion, xa: Tensor, xb: Tensor, t: int, lam: float,
               noise: Tensor) -> Tensor:
    """Fusion's starting point: both images noised to step t with the same eps, mixed with
    weight lambda on A: lam * q(x_a, t) + (1 - lam) * q(x_b, t). Sharing eps keeps the mix at
    exactly the noise level of step t, so denoising from t sees what it was trained on."""
    tt = torch.full((xa.shape[0],), t, device=xa.device, dtype=torch.long)
    return lam * diffusion.q_sample(xa, tt, noise) + (1 - lam) * diffusion.q_sample(xb, tt, noise)


"""The figures researchers put in their reports, each one PNG."""
from __future__ import annotations

from typing import Sequence

import torch

from ..models.diffusion import lerp, mix_noised, slerp


@torch.no_grad()
def class_grid(trained, columns: int, *, sampler="ddim", steps=50, guidance=0.0, seed=0, progress=None) -> torch.Tensor:
    """Rows = classes, columns = fixed noises (the same noise in every row)."""
    classes = trained.cond.size
    noise = torch.randn((columns, *trained.image_shape), generator=torch.Generator().manual_seed(seed))
    x_T = noise.repeat(classes, 1, 1, 1)
    labels = torch.arange(classes).repeat_interleave(columns)
    return _run(trained, x_T, labels, sampler, steps, 0.0, guidance, seed, progress)


@torch.no_grad()
def denoising_strip(trained, timesteps: Sequence[int], *, label: int | None = None, guidance=0.0, seed=0,
                    progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDPM chain; x_t (row 1) and the predicted x_0 (row 2) at the chosen t, high to low."""
    wanted = sorted({min(max(0, int(t)), trained.diffusion.T - 1) for t in timesteps}, reverse=True)
    x_T = torch.randn((1, *trained.image_shape), generator=torch.Generator().manual_seed(seed))
    labels = torch.tensor([label]) if label is not None else None
    dev = _device(trained)
    _, trace = trained.diffusion.sample(
        trained.model, x_T.to(dev), sampler="ddpm", cond=_to(labels, dev),
        null_cond=trained.null(1, dev) if labels is not None else None, guidance=guidance, record=wanted,
        generator=torch.Generator().manual_seed(seed + 1), progress=progress)
    return torch.cat([s.x_t for s in trace]).clamp(-1, 1), torch.cat([s.x0_pred for s in trace])


@torch.no_grad()
def eta_grid(trained, noise: torch.Tensor, etas: Sequence[float], *, steps=50, labels=None, guidance=0.0, seed=0,
             progress=None) -> torch.Tensor:
    """Rows = eta values, columns = the same saved noises. eta 0 is DDIM, 1 is DDPM-like."""
    rows = [_run(trained, noise, labels, "ddim", steps, eta, guidance, seed, progress) for eta in etas]
    return torch.cat(rows)


@torch.no_grad()
def interpolation(trained, z0: torch.Tensor, z1: torch.Tensor, alphas: Sequence[float], *, steps=50,
                  label=None, guidance=0.0, progress=None) -> torch.Tensor:
    """Row 1: slerp between two noises; row 2: plain linear interpolation. DDIM eta 0, so
    each image is a deterministic function of its noise."""
    rows = []
    for f in (slerp, lerp):
        x_T = torch.cat([f(z0, z1, a) for a in alphas])
        labels = torch.full((len(alphas),), label) if label is not None else None
        rows.append(_run(trained, x_T, labels, "ddim", steps, 0.0, guidance, 0, progress))
    return torch.cat(rows)


@torch.no_grad()
def fuse(trained, xa: torch.Tensor, xb: torch.Tensor, t: int, lam: float, *, sampler="ddpm", steps=None,
         seed=0, progress=None) -> torch.Tensor:
    """Noise both images to step t with the same eps, mix with weight lambda, denoise from t."""
    dev = _device(trained)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(xa.shape, generator=gen).to(dev)
    x_t = mix_noised(trained.diffusion, xa.to(dev), xb.to(dev), t, lam, eps)
    null = trained.null(len(xa), dev) if trained.cond.kind != "none" else None
    out, _ = trained.diffusion.sample(trained.model, x_t, sampler=sampler, steps=steps, start=t, cond=null,
                                      generator=gen, progress=progress)
    return out.cpu()


def _device(trained):
    return next(trained.model.parameters()).device


def _to(t, dev):
    return t.to(dev) if t is not None else None


def _run(trained, x_T, labels, sampler, steps, eta, guidance, seed, progress) -> torch.Tensor:
    dev = _device(trained)
    null = trained.null(len(x_T), dev) if labels is not None else None
    out, _ = trained.diffusion.sample(trained.model, x_T.to(dev), sampler=sampler, steps=steps, eta=eta,
                                      cond=_to(labels, dev), null_cond=null, guidance=guidance,
                                      generator=torch.Generator().manual_seed(seed), progress=progress)
    return out.cpu()

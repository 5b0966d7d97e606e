"""A trained GAN run: the generator a checkpoint holds, ready to sample; and how G and D are
built and called, shared by the trainer and sampling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..models import dcgan, stylegan
from ..models.ema import ema_weights
from .conditioning import Conditioning

MIXING_SOURCES = 4  # the style-mixing grid: 4 row sources x 4 column sources


def model_args(cfg, channels: int, cond: Conditioning) -> tuple[dict, dict]:
    """Constructor arguments of G and D (stored in checkpoints, so `restore` needs no config)."""
    if cfg.family == "stylegan":
        return (dict(image_size=cfg.image_size, channels=channels, z_dim=cfg.latent_dim, w_dim=cfg.w_dim,
                     mapping_layers=cfg.mapping_layers, width=cfg.g_width),
                dict(image_size=cfg.image_size, channels=channels, width=cfg.d_width, mbstd=cfg.mbstd))
    label = dict(cond_kind=cond.kind, cond_size=cond.size)
    return (dict(image_size=cfg.image_size, channels=channels, latent_dim=cfg.latent_dim, width=cfg.g_width,
                 embed_dim=getattr(cfg, "embed_dim", 64), **label),
            dict(image_size=cfg.image_size, channels=channels, width=cfg.d_width,
                 d_cond=getattr(cfg, "d_cond", "concat"), **label))


def build_generator(family: str, args: dict) -> nn.Module:
    return (stylegan.Generator if family == "stylegan" else dcgan.Generator)(**args)


def build_discriminator(family: str, args: dict) -> nn.Module:
    return (stylegan.Discriminator if family == "stylegan" else dcgan.Discriminator)(**args)


def run_g(family: str, g: nn.Module, z: torch.Tensor, y: torch.Tensor | None, mix=None, **kw) -> torch.Tensor:
    """G(z, y); for stylegan `mix` = (z2, crossover) mixes styles and kw passes truncation/noise."""
    if family == "stylegan":
        z2, crossover = mix or (None, None)
        return g(z, z2, crossover, **kw)
    return g(z, y)


def run_d(family: str, d: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return d(x) if family == "stylegan" else d(x, y)


def index_seed(seed: int, index: int) -> int:
    """A 64-bit generator seed for sample `index` of set `seed` (numpy's SeedSequence hash of the
    pair, so nearby seeds and indices give unrelated streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])


@dataclass
class TrainedGAN:
    """A generator restored from a checkpoint, ready to sample.

    `weights` is what was loaded: "ema" (stylegan's EMA generator) or "raw". dcgan and cgan
    keep no EMA (as in the DCGAN paper), so for them "ema" falls back to the raw G and
    `weights` says "raw". Meets TrainedModel."""

    is_gan: ClassVar[bool] = True  # one forward pass of `generator` per batch
    generator: nn.Module
    family: str  # "dcgan" (also cgan) | "stylegan"
    cond: Conditioning
    image_shape: tuple[int, int, int]
    step: int
    weights: str
    latent_dim: int
    device: torch.device

    def latents(self, n: int, seed: int, first: int = 0) -> torch.Tensor:
        """The latents of sample indices first .. first + n - 1 of the set `seed`: each from its
        own generator seeded by (seed, index), so a set depends only on its seed (never on the
        batch size or where a batch starts) and two seeds share no latent."""
        return torch.stack([torch.randn(self.latent_dim, generator=torch.Generator().manual_seed(index_seed(seed, i)))
                            for i in range(first, first + n)]) if n else torch.empty(0, self.latent_dim)

    @torch.no_grad()
    def generate(self, n: int, labels: torch.Tensor | None = None, seed: int = 0, truncation_psi: float = 1.0,
                 batch_size: int = 256, first: int = 0) -> torch.Tensor:
        """Samples first .. first + n - 1 of the set `seed`: images in [-1, 1], (N, C, H, W) float on
        the CPU. cgan needs `labels`: (N,) class indices or (N, K) multi-hot (one row is repeated
        for all N); truncation is stylegan's."""
        y = self.check_labels(labels, n)
        if truncation_psi != 1.0 and self.family != "stylegan":
            raise ValueError("truncation psi applies to stylegan runs only")
        z = self.latents(n, seed, first)
        kw = {"truncation_psi": truncation_psi, "noise_mode": "const"} if self.family == "stylegan" else {}
        out = [run_g(self.family, self.generator, z[i:i + batch_size].to(self.device),
                     None if y is None else y[i:i + batch_size].to(self.device), **kw).float().clamp(-1, 1).cpu()
               for i in range(0, n, batch_size)]
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    @torch.no_grad()
    def mixing_grid(self, seed: int = 0, rows: int = MIXING_SOURCES, cols: int = MIXING_SOURCES,
                    truncation_psi: float = 1.0, crossover: int | None = None) -> torch.Tensor:
        """stylegan's style-mixing figure: (rows+1) x (cols+1) images, row by row (see models.stylegan)."""
        if self.family != "stylegan":
            raise ValueError("style mixing needs a stylegan run")
        z = self.latents(rows + cols, seed).to(self.device)
        grid = stylegan.mixing_grid(self.generator, z[:rows], z[rows:], crossover, truncation_psi)
        return grid.float().clamp(-1, 1).cpu()

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        kind, size = self.cond.kind, self.cond.size
        if kind == "none":
            if labels is not None:
                raise ValueError("this generator is unconditional: labels are not used")
            return None
        if labels is None:
            wanted = "class indices" if kind == "class" else "multi-hot labels"
            raise ValueError(f"this generator is conditional: give {wanted}")
        labels = torch.as_tensor(labels)
        if kind == "class":
            labels = labels.long().reshape(-1)
            if len(labels) and (labels.min() < 0 or labels.max() >= size):
                raise ValueError(f"class labels must be in 0..{size - 1}, got {labels.tolist()[:10]}")
        else:
            labels = labels.float().reshape(-1, size) if labels.numel() % size == 0 else labels
            if labels.dim() != 2 or labels.shape[1] != size:
                raise ValueError(f"multi-hot labels must have {size} entries per image, "
                                 f"got shape {tuple(labels.shape)}")
        if len(labels) == 1:
            labels = labels.expand(n, *labels.shape[1:])
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} images")
        return labels


def restore(cfg, state: dict, weights: str = "ema", device: str | torch.device = "cpu") -> TrainedGAN:
    """The generator in a checkpoint's state (its constructor arguments are in it, so `cfg` is
    not needed to rebuild it), in eval mode on `device`."""
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    device = torch.device(device)
    family, args = state["family"], dict(state["g_args"])
    G = build_generator(family, args).to(device)
    use_ema = weights == "ema" and "g_ema" in state
    G.load_state_dict(ema_weights(state["g_ema"]) if use_ema else state["g"])
    G.eval().requires_grad_(False)
    cond = Conditioning.of_checkpoint(state)
    shape = (int(args["channels"]), int(args["image_size"]), int(args["image_size"]))
    latent = int(args["z_dim"] if family == "stylegan" else args["latent_dim"])
    return TrainedGAN(G, family, cond, shape, int(state["step"]), "ema" if use_ema else "raw", latent, device)

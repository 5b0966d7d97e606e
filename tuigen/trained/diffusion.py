"""A trained diffusion run: the UNet and schedule a checkpoint holds, ready to sample."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..models.diffusion import GaussianDiffusion
from ..models.ema import ema_weights
from ..models.unet import UNet
from .conditioning import Conditioning


def model_args(cfg, channels_in: int, cond: Conditioning) -> dict:
    """The UNet's constructor arguments (stored in checkpoints, so restore needs no guessing)."""
    return dict(image_size=cfg.image_size, in_channels=channels_in, channels=cfg.channels,
                dim_mults=tuple(cfg.dim_mults), num_res_blocks=cfg.num_res_blocks,
                attn_resolutions=tuple(cfg.attn_resolutions), dropout=cfg.dropout, **cond.unet_args())


def make_diffusion(cfg, device) -> GaussianDiffusion:
    return GaussianDiffusion(cfg.timesteps, cfg.beta_schedule, cfg.objective, cfg.min_snr_gamma, device)


@dataclass
class Trained:
    """A diffusion model restored from a checkpoint, ready to sample (meets TrainedModel)."""

    is_gan: ClassVar[bool] = False  # sampling runs the reverse chain of `diffusion` through `model`
    model: UNet
    diffusion: GaussianDiffusion
    cond: Conditioning
    step: int
    weights: str  # "ema" | "raw"
    image_shape: tuple[int, int, int]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def null(self, n: int, device) -> Any:
        return self.model.null_cond(n, device)


def restore(cfg, state: dict, weights: str = "ema", device: str | torch.device = "cpu") -> Trained:
    """The sampling model in a checkpoint's state (`cfg` gives the noise schedule)."""
    args = dict(state["model_args"])
    args["dim_mults"], args["attn_resolutions"] = tuple(args["dim_mults"]), tuple(args["attn_resolutions"])
    model = UNet(**args).to(device)
    model.load_state_dict(ema_weights(state["ema"]) if weights == "ema" else state["model"])
    model.eval()
    shape = (args["in_channels"], args["image_size"], args["image_size"])
    return Trained(model, make_diffusion(cfg, device), Conditioning.of_checkpoint(state), int(state["step"]), weights,
                   shape)

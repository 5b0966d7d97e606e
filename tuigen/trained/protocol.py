"""What sampling and scoring need of a trained model; `Trained` (diffusion) and `TrainedGAN`
meet it, and a test checks that they do."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from .conditioning import Conditioning


@runtime_checkable
class TrainedModel(Protocol):
    is_gan: bool  # True: one forward pass per batch (generate); False: a reverse chain (diffusion)
    cond: Conditioning  # how labels enter it
    image_shape: tuple[int, int, int]  # (C, H, W) of one sample
    step: int  # the checkpoint's training step
    weights: str  # "ema" | "raw": which weights were loaded

    @property
    def device(self): ...

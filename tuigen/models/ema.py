"""An exponential moving average of a model's weights, the copy diffusion models sample from."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """theta_ema <- decay * theta_ema + (1 - decay) * theta, every `every` optimizer steps."""

    def __init__(self, model: nn.Module, decay: float = 0.995, every: int = 10):
        self.decay, self.every = decay, every
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        if step % self.every:
            return
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - self.decay)  # one fused op over all tensors
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)  # e.g. BatchNorm statistics follow the live model

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)

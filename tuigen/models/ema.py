"""An exponential moving average of a model's weights, the copy diffusion models sample from."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """theta_ema <- d_n * theta_ema + (1 - d_n) * theta, every `every` optimizer steps.

    d_n = min(decay, (1 + n) / (10 + n)) after n updates: the usual warm-up, so early in a
    run the average follows the model instead of staying mostly the random initial weights
    (with decay 0.998 and no warm-up, step 500 would still be 37% initialisation).
    """

    def __init__(self, model: nn.Module, decay: float = 0.995, every: int = 10):
        self.decay, self.every = decay, every
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        if step % self.every:
            return
        d = self.current_decay()
        self.updates += 1
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)  # one fused op over all tensors
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)  # e.g. BatchNorm statistics follow the live model

    def state_dict(self) -> dict:
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(ema_weights(state))
        # Checkpoints from before the warm-up stored bare weights: treat their warm-up as done.
        self.updates = int(state["updates"]) if "updates" in state else 10 ** 6


def ema_weights(state: dict) -> dict:
    """The EMA model's state_dict inside a saved EMA state (either layout)."""
    return state["weights"] if "updates" in state and "weights" in state else state

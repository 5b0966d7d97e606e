"""Scoring a trained run: FID / KID against its dataset, and evaluator accuracy for
conditional runs. Each score is stored with its provenance (store.add_score)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..store import Store
from .loading import load_trained
from .sampling import sample


@dataclass
class SamplerSettings:
    sampler: str = "ddim"
    steps: int | None = 50
    eta: float = 0.0
    guidance: float = 0.0
    batch: int = 64
    seed: int = 0

    def provenance(self, timesteps: int) -> dict:
        return {"sampler": self.sampler, "steps": self.steps if self.sampler == "ddim" else timesteps,
                "eta": self.eta if self.sampler == "ddim" else 1.0, "guidance": self.guidance}


def _channels_first(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))


def accuracy_of_run(store: Store, run_id: int, *, settings: SamplerSettings, per_class: int = 100,
                    which: str = "test", checkpoint: str | None = None, weights: str = "ema", device: str = "auto",
                    on_sample: Callable[[int], None] | None = None) -> tuple[float, dict]:
    """Sample the fixed label list with guidance w, classify with the dataset's evaluator."""
    from ..metrics.evaluators import eval_labels, get_evaluator, labels_identity

    run, cfg, trained = load_trained(store, run_id, checkpoint=checkpoint, weights=weights, device=device)
    if trained.cond.kind == "none":
        raise ValueError(f"run {run_id} is unconditional; accuracy needs a conditional run (cond-ddpm)")
    labels = eval_labels(trained.cond.kind, trained.cond.size, per_class=per_class, which=which)
    evaluator = get_evaluator(run.dataset, trained.image_shape[1], trained.image_shape[0],
                              device=next(trained.model.parameters()).device)
    images = sample(trained, len(labels), batch=settings.batch, sampler=settings.sampler, steps=settings.steps,
                    eta=settings.eta, labels=torch.as_tensor(labels), guidance=settings.guidance,
                    seed=settings.seed, progress=on_sample)
    acc = evaluator.accuracy(_channels_first(images), labels)
    provenance = {"n": len(labels), "labels": labels_identity(trained.cond.kind, per_class, which),
                  "evaluator": evaluator.identity, "evaluator_held_out_accuracy": round(evaluator.held_out_accuracy, 4),
                  "weights": weights, **settings.provenance(trained.diffusion.T)}
    store.add_score(run_id, "accuracy", acc, provenance, step=trained.step)
    return acc, provenance

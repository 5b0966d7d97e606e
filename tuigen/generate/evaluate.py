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


def reference_identity(dataset: str, images) -> str:
    """A stable name for a dataset's images in the FID stats cache and in score provenance."""
    from ..data.cache import DATA_VERSION

    n, c, size, _ = images.shape
    return f"dataset:{dataset}/size{size}/ch{c}/n{n}/data-v{DATA_VERSION}"


def reference_images(dataset: str, size: int, channels: int):
    """A run's real data at its own size, and its identity."""
    from ..data import load_dataset

    data = load_dataset(dataset, size, channels)
    return data.images, reference_identity(dataset, data.images)


def _fid_progress(bar, bar_factory):
    """A progress callback for Inception features, or None without a bar."""
    if not bar:
        return None
    fid_bar = bar_factory(bar, "Inception features", 1)
    return fid_bar.set


def comparable_provenance(result, reference: str, sampler: dict, weights: str) -> dict:
    """What must match for two FIDs to be ranked together (not the checkpoint step)."""
    p = result.provenance
    return {"n": result.n_a, "reference": reference, "reference_n": result.n_b, "extractor": p["extractor"],
            "input_scaling": p["input_scaling"], "fid_method": p["fid_method"],
            "kid": f"{p['kid']['subsets']}x{p['kid']['subset_size']}", "weights": weights, **sampler}


def fid_of_run(store: Store, run_id: int, *, n: int, settings: SamplerSettings, checkpoint: str | None = None,
               weights: str = "ema", device: str = "auto", bar=None, bar_factory=None):
    """Sample n images from a run, compare with its dataset, store FID and KID with provenance."""
    from ..metrics import compare

    run, cfg, trained = load_trained(store, run_id, checkpoint=checkpoint, weights=weights, device=device)
    gan = hasattr(trained, "generate")
    evals = 1 if gan else len(trained.diffusion.timesteps_for(settings.sampler, settings.steps))
    tick = bar_factory(bar, f"sampling {n} from run {run_id}", evals * -(-n // settings.batch)) if bar else None
    labels = None
    if trained.cond.kind == "class":  # conditional runs: every class equally often
        labels = torch.arange(trained.cond.size).repeat(-(-n // trained.cond.size))[:n]
    elif trained.cond.kind == "multi":
        from ..data import shapes_test_labels

        table = torch.from_numpy(shapes_test_labels("test"))
        labels = table[torch.arange(n) % len(table)]
    images = sample(trained, n, batch=settings.batch, sampler=settings.sampler, steps=settings.steps,
                    eta=settings.eta, labels=labels, guidance=settings.guidance, seed=settings.seed, progress=tick)
    ref, ref_identity = reference_images(run.dataset, trained.image_shape[1], trained.image_shape[0])
    result = compare(images, ref, identity_b=ref_identity, device=device, progress=_fid_progress(bar, bar_factory))
    sampler = {"sampler": "gan"} if gan else settings.provenance(trained.diffusion.T)
    if gan:
        sampler["guidance"] = 0.0
    prov = comparable_provenance(result, ref_identity, sampler, trained.weights)
    store.add_score(run_id, "fid", result.fid, prov, step=trained.step)
    store.add_score(run_id, "kid", result.kid_mean, prov, std=result.kid_std, step=trained.step)
    return result


def fid_of_folders(dir_a: str, dir_b: str, *, device: str = "auto", bar=None, bar_factory=None):
    from ..metrics import compare, load_image_folder

    a, b = load_image_folder(dir_a), load_image_folder(dir_b)
    for folder, name in ((a, dir_a), (b, dir_b)):
        if getattr(folder, "skipped", None):
            print(f"{name}: skipped {len(folder.skipped)} unreadable file(s)")
    return compare(a, b, device=device, progress=_fid_progress(bar, bar_factory))

"""Scoring a trained run: FID / KID against its dataset, and evaluator accuracy for
conditional runs. Each score is stored with its provenance (trained/provenance.py)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..metrics.modes import DEFAULT_METHOD, DEFAULT_MODE
from ..store import Store
from ..trained.conditioning import balanced_labels
from ..trained.provenance import (SamplerSettings, accuracy_provenance, fid_provenance, fid_scores,
                                  reference_identity, sampler_provenance)
from ..trained.sampling import sample
from .loading import load_trained


def _channels_first(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))


def accuracy_of_run(store: Store, run_id: int, *, settings: SamplerSettings, per_class: int = 100,
                    which: str = "test", checkpoint: str | None = None, weights: str = "ema", device: str = "auto",
                    on_sample: Callable[[int], None] | None = None) -> tuple[float, dict]:
    """Sample the fixed label list with guidance w, classify with the dataset's evaluator."""
    from ..metrics.evaluators import eval_labels, get_evaluator, labels_identity

    run, cfg, trained = load_trained(store, run_id, checkpoint=checkpoint, weights=weights, device=device)
    if trained.cond.kind == "none":
        raise ValueError(f"run {run_id} is unconditional; accuracy needs a conditional run (cond-ddpm or cgan)")
    labels = eval_labels(trained.cond.kind, trained.cond.size, per_class=per_class, which=which)
    evaluator = get_evaluator(run.dataset, trained.image_shape[1], trained.image_shape[0], device=trained.device)
    images = sample(trained, len(labels), batch=settings.batch, sampler=settings.sampler, steps=settings.steps,
                    eta=settings.eta, labels=torch.as_tensor(labels), guidance=settings.guidance,
                    seed=settings.seed, progress=on_sample)
    acc = evaluator.accuracy(_channels_first(images), labels)
    provenance = accuracy_provenance(len(labels), labels_identity(trained.cond.kind, per_class, which), evaluator,
                                     weights, sampler_provenance(trained, settings))
    store.add_score(run_id, "accuracy", acc, provenance, step=trained.step)
    return acc, provenance


def reference_images(dataset: str, size: int, channels: int):
    """A run's real data at its own size, and its identity."""
    from ..data import load_dataset

    data = load_dataset(dataset, size, channels)
    return data.images, reference_identity(data)


def _fid_progress(bar, bar_factory):
    """A progress callback for Inception features, or None without a bar."""
    if not bar:
        return None
    fid_bar = bar_factory(bar, "Inception features", 1)
    return fid_bar.set


def fid_of_run(store: Store, run_id: int, *, n: int, settings: SamplerSettings, checkpoint: str | None = None,
               weights: str = "ema", device: str = "auto", bar=None, bar_factory=None, mode: str = DEFAULT_MODE,
               fid_method: str = DEFAULT_METHOD):
    """Sample n images from a run, compare with its dataset, store FID and KID with provenance."""
    from ..metrics import compare

    run, cfg, trained = load_trained(store, run_id, checkpoint=checkpoint, weights=weights, device=device)
    evals = 1 if trained.is_gan else len(trained.diffusion.timesteps_for(settings.sampler, settings.steps))
    tick = bar_factory(bar, f"sampling {n} from run {run_id}", evals * -(-n // settings.batch)) if bar else None
    images = sample(trained, n, batch=settings.batch, sampler=settings.sampler, steps=settings.steps,
                    eta=settings.eta, labels=balanced_labels(trained.cond, n), guidance=settings.guidance,
                    seed=settings.seed, progress=tick)
    ref, ref_identity = reference_images(run.dataset, trained.image_shape[1], trained.image_shape[0])
    result = compare(images, ref, identity_b=ref_identity, device=device, progress=_fid_progress(bar, bar_factory),
                     mode=mode, fid_method=fid_method)
    prov = fid_provenance(result, ref_identity, sampler_provenance(trained, settings), trained.weights)
    for metric, value, std in fid_scores(result):
        store.add_score(run_id, metric, value, prov, std=std, step=trained.step)
    return result


def fid_of_folders(dir_a: str, dir_b: str, *, device: str = "auto", bar=None, bar_factory=None,
                   mode: str = DEFAULT_MODE, fid_method: str = DEFAULT_METHOD):
    """FID of two folders, each read in batches by the one folder reader. Returns the result and,
    per folder, the files its reader skipped as (name, reason)."""
    from ..metrics import compare_stats, folder_stats

    progress = _fid_progress(bar, bar_factory)
    sides = [folder_stats(d, device=device, progress=progress, mode=mode) for d in (dir_a, dir_b)]
    result = compare_stats(sides[0].stats, sides[1].stats, device=device, mode=mode, fid_method=fid_method)
    return result, [(d, side.skipped) for d, side in zip((dir_a, dir_b), sides)]

"""Find a run's checkpoint and rebuild its model for sampling."""
from __future__ import annotations

from pathlib import Path

from .. import config as schema
from ..experiments import get_kind
from ..store import Store

DIFFUSION = ("ddpm", "cond-ddpm")
GANS = ("dcgan", "cgan", "stylegan")
GENERATIVE = DIFFUSION + GANS


class GenerateError(ValueError):
    """Bad input to a sampling command; the message names it."""


def checkpoint_path(store: Store, run_id: int, checkpoint: str | None) -> Path:
    """A checkpoint by path, by step, or the run's newest."""
    if checkpoint and Path(checkpoint).is_file():
        return Path(checkpoint)
    arts = store.artifacts(run_id, kind="checkpoint")
    if checkpoint:
        if not checkpoint.isdigit():
            raise GenerateError(f"--checkpoint {checkpoint}: expected a step number or a checkpoint file")
        arts = [a for a in arts if a.step == int(checkpoint)]
        if not arts:
            steps = ", ".join(str(a.step) for a in store.artifacts(run_id, kind="checkpoint")) or "none"
            raise GenerateError(f"run {run_id} has no checkpoint at step {checkpoint} (saved steps: {steps})")
    arts = [a for a in arts if Path(a.path).is_file()]
    if not arts:
        raise GenerateError(f"run {run_id} has no checkpoint yet; wait for its first one or resume it")
    return Path(max(arts, key=lambda a: (a.step or 0, a.id)).path)


def load_trained(store: Store, run_id: int, *, checkpoint: str | None = None, weights: str = "ema",
                 device: str = "auto"):
    """(run, config, a trained generator): diffusion runs give `Trained`, GAN runs `TrainedGAN`."""
    from ..runner.context import pick_device

    run = store.get_run(run_id)
    if run.kind not in GENERATIVE:
        raise GenerateError(f"run {run_id} is a '{run.kind}' run; sampling works on {', '.join(GENERATIVE)} runs")
    cfg = schema.from_json(get_kind(run.kind).config, run.config)
    path = checkpoint_path(store, run_id, checkpoint)
    if run.kind in GANS:
        from ..experiments.gan_train import restore
    else:
        from ..experiments.diffusion_train import restore
    return run, cfg, restore(cfg, str(path), weights, pick_device(device))


def is_gan(trained) -> bool:
    return hasattr(trained, "generate")

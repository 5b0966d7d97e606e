"""Find a run's checkpoint in the store and rebuild its model for sampling (trained/restore.py)."""
from __future__ import annotations

from pathlib import Path

from .. import config as schema
from ..experiments import KINDS, get_kind
from ..store import Store

DIFFUSION = tuple(k.name for k in KINDS.values() if k.trained == "diffusion")
GANS = tuple(k.name for k in KINDS.values() if k.trained == "gan")
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
                 device: str = "auto", kinds: tuple[str, ...] = GENERATIVE):
    """(run, config, a trained generator): diffusion runs give `Trained`, GAN runs `TrainedGAN`.
    `kinds` are the run kinds the caller can use (figures and accuracy need a diffusion run)."""
    from ..trained.checkpoint import load
    from ..trained.device import pick_device
    from ..trained.restore import mismatch, restore

    run = store.get_run(run_id)
    if run.kind not in kinds:
        raise GenerateError(f"run {run_id} is a '{run.kind}' run; sampling works on {', '.join(kinds)} runs")
    kind = get_kind(run.kind)
    cfg = schema.from_json(kind.config, run.config)
    path = checkpoint_path(store, run_id, checkpoint)
    try:
        dev = pick_device(device)
    except RuntimeError as e:  # e.g. cuda asked for on a machine without one
        raise GenerateError(str(e)) from None
    try:
        state = load(path)
    except RuntimeError as e:  # the file the user pointed at is unusable: bad input, exit 2
        raise GenerateError(str(e)) from None
    problems = mismatch(kind.trained, run.kind, cfg, state)
    if problems:
        raise GenerateError(f"checkpoint {path} does not match the run's config ({problems}); "
                            f"pass a checkpoint saved by run {run_id}, or clone the run that saved it")
    return run, cfg, restore(kind.trained, cfg, state, weights, dev)

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
                 device: str = "auto", kinds: tuple[str, ...] = GENERATIVE):
    """(run, config, a trained generator): diffusion runs give `Trained`, GAN runs `TrainedGAN`.
    `kinds` are the run kinds the caller can use (figures and accuracy need a diffusion run)."""
    from ..runner.checkpoint import load
    from ..runner.context import pick_device

    run = store.get_run(run_id)
    if run.kind not in kinds:
        raise GenerateError(f"run {run_id} is a '{run.kind}' run; sampling works on {', '.join(kinds)} runs")
    cfg = schema.from_json(get_kind(run.kind).config, run.config)
    path = checkpoint_path(store, run_id, checkpoint)
    try:
        dev = pick_device(device)
    except RuntimeError as e:  # e.g. cuda asked for on a machine without one
        raise GenerateError(str(e)) from None
    try:
        state = load(path)
    except RuntimeError as e:  # the file the user pointed at is unusable: bad input, exit 2
        raise GenerateError(str(e)) from None
    problems = mismatch(run.kind, cfg, state)
    if problems:
        raise GenerateError(f"checkpoint {path} does not match the run's config ({problems}); "
                            f"pass a checkpoint saved by run {run_id}, or clone the run that saved it")
    if run.kind in GANS:
        from ..experiments.gan_train import restore
    else:
        from ..experiments.diffusion_train import restore
    return run, cfg, restore(cfg, state, weights, dev)


def mismatch(kind: str, cfg, state: dict) -> str:
    """'' when the checkpoint holds the network the run's config builds, else what differs:
    rebuilding with the wrong shapes would only end in a tensor size-mismatch traceback."""
    from ..experiments.diffusion_train import Conditioning

    gan = kind in GANS
    stored = state.get("g_args" if gan else "model_args") if isinstance(state, dict) else None
    if not isinstance(stored, dict):
        return f"it is not a {'GAN' if gan else 'diffusion'} checkpoint, and this is a {kind} run"
    cond = Conditioning(state.get("cond_kind", "none"), int(state.get("cond_size", 0)), [])
    if gan:
        from ..experiments.gan_train import model_args

        if state.get("family") != cfg.family:
            return f"family: {cfg.family} in the config, {state.get('family')} in the checkpoint"
        expected = model_args(cfg, int(stored["channels"]), cond)[0]
    else:
        from ..experiments.diffusion_train import model_args

        expected = model_args(cfg, int(stored["in_channels"]), cond)
    return "; ".join(f"{k}: {_show(v)} in the config, {_show(stored[k])} in the checkpoint"
                     for k, v in expected.items() if k in stored and _show(v) != _show(stored[k]))


def _show(v) -> str:
    """Lists (JSON) and tuples (config) of the same numbers compare and print alike."""
    return schema.format_value(tuple(v)) if isinstance(v, (list, tuple)) else schema.format_value(v)


def is_gan(trained) -> bool:
    return hasattr(trained, "generate")

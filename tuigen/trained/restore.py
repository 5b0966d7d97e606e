"""How a checkpoint becomes a model that samples: check that it holds the network the run's
config builds, then rebuild that network (diffusion UNet or GAN generator) from it."""
from __future__ import annotations

from .. import config as schema
from .conditioning import Conditioning

FAMILIES = ("diffusion", "gan")  # what ExperimentKind.trained may say


def restore(family: str, cfg, state: dict, weights: str = "ema", device="cpu"):
    """`Trained` (diffusion) or `TrainedGAN` (gan) from a loaded checkpoint state."""
    if family == "gan":
        from .gan import restore as restore_gan

        return restore_gan(cfg, state, weights, device)
    from .diffusion import restore as restore_diffusion

    return restore_diffusion(cfg, state, weights, device)


def mismatch(family: str, kind: str, cfg, state: dict) -> str:
    """'' when the checkpoint holds the network the run's config builds, else what differs:
    rebuilding with the wrong shapes would only end in a tensor size-mismatch traceback."""
    gan = family == "gan"
    stored = state.get("g_args" if gan else "model_args") if isinstance(state, dict) else None
    if not isinstance(stored, dict):
        return f"it is not a {'GAN' if gan else 'diffusion'} checkpoint, and this is a {kind} run"
    cond = Conditioning.of_checkpoint(state)
    if gan:
        from .gan import model_args

        if state.get("family") != cfg.family:
            return f"family: {cfg.family} in the config, {state.get('family')} in the checkpoint"
        expected = model_args(cfg, int(stored["channels"]), cond)[0]
    else:
        from .diffusion import model_args

        expected = model_args(cfg, int(stored["in_channels"]), cond)
    return "; ".join(f"{k}: {_show(v)} in the config, {_show(stored[k])} in the checkpoint"
                     for k, v in expected.items() if k in stored and _show(v) != _show(stored[k]))


def _show(v) -> str:
    """Lists (JSON) and tuples (config) of the same numbers compare and print alike."""
    return schema.format_value(tuple(v)) if isinstance(v, (list, tuple)) else schema.format_value(v)

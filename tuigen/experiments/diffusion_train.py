"""The diffusion trainer behind `ddpm` and `cond-ddpm`, and rebuilding a trained model for
sampling. Imported in the worker (and by sampling commands) only: it needs torch."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from ..models.diffusion import GaussianDiffusion
from ..models.ema import EMA, ema_weights
from ..models.summary import format_summary, summarize
from ..models.unet import UNet
from .common import amp_dtype, autocast, batch_generator, grad_scaler, to_device, to_float


@dataclass
class Conditioning:
    """How labels enter the model: none, class index, or multi-hot vector."""

    kind: str  # "none" | "class" | "multi"
    size: int  # number of classes, or multi-hot width
    names: list[str]

    def unet_args(self) -> dict:
        return {"num_classes": self.size if self.kind == "class" else 0,
                "cond_dim": self.size if self.kind == "multi" else 0}


def model_args(cfg, channels_in: int, cond: Conditioning) -> dict:
    return dict(image_size=cfg.image_size, in_channels=channels_in, channels=cfg.channels,
                dim_mults=tuple(cfg.dim_mults), num_res_blocks=cfg.num_res_blocks,
                attn_resolutions=tuple(cfg.attn_resolutions), dropout=cfg.dropout, **cond.unet_args())


def make_diffusion(cfg, device) -> GaussianDiffusion:
    return GaussianDiffusion(cfg.timesteps, cfg.beta_schedule, cfg.objective, cfg.min_snr_gamma, device)


def drop_labels(labels: torch.Tensor, p: float, model: UNet, gen: torch.Generator) -> torch.Tensor:
    """Replace each label by the null label with probability p (classifier-free guidance training)."""
    if p <= 0:
        return labels
    drop = (torch.rand(len(labels), generator=gen) < p).to(labels.device)
    null = model.null_cond(len(labels), labels.device)
    shape = (-1,) + (1,) * (labels.dim() - 1)
    return torch.where(drop.view(shape), null, labels)


def preview_labels(cond: Conditioning, n: int, device) -> torch.Tensor | None:
    """Labels for the sample grids: each class in turn (rows = classes), or fixed test scenes."""
    if cond.kind == "class":
        per_class = max(1, n // cond.size)
        return torch.arange(cond.size, device=device).repeat_interleave(per_class)
    if cond.kind == "multi":
        from ..data import shapes_test_labels

        labels = torch.from_numpy(shapes_test_labels("test"))
        return labels[torch.arange(n) % len(labels)].to(device)
    return None


def train(cfg, ctx) -> None:
    from ..data import load_dataset

    dev = ctx.device
    torch.manual_seed(cfg.seed + ctx.rank)  # each data-parallel rank its own noise; DDP syncs the weights
    data = load_dataset(cfg.dataset, cfg.image_size)
    conditional = hasattr(cfg, "p_uncond")
    cond = Conditioning(data.label_kind if conditional else "none", data.num_classes if conditional else 0,
                        list(data.class_names) if conditional else [])
    if conditional and cond.kind == "none":
        raise ValueError(f"--dataset {cfg.dataset} has no labels; cond-ddpm needs class or multi-hot labels")
    images = to_device(data.images, dev)
    labels = to_device(data.labels, dev) if conditional else None
    args = model_args(cfg, data.images.shape[1], cond)
    model = UNet(**args).to(dev)
    net = ctx.wrap_model(model)  # DDP on several processes (rank 0's weights first, so before the EMA copy)
    ema = EMA(model, cfg.ema_decay, cfg.ema_every)
    diffusion = make_diffusion(cfg, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = amp_dtype(cfg.precision, dev)
    scaler = grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    preview_gen = torch.Generator().manual_seed(cfg.seed + 1)  # the same noises at every grid
    preview_n = len(preview_labels(cond, cfg.num_samples, "cpu")) if conditional else cfg.num_samples
    preview_noise = torch.randn((preview_n, *data.images.shape[1:]), generator=preview_gen).to(dev)
    meta = {"model_args": args, "cond_kind": cond.kind, "cond_size": cond.size, "class_names": cond.names}

    state = ctx.load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        gen.set_state(state["batch_rng"].cpu())  # loaded onto the device; generators live on the CPU
    else:
        _record_architecture(ctx, model, images, labels, cond)
        ctx.event(f"{data.name}: {len(data.images)} images {tuple(data.images.shape[1:])}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters, conditioning: {cond.kind}")

    def snapshot() -> dict:
        return {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(), "batch_rng": gen.get_state(), **meta}

    n = len(images)
    window_loss, window_t, window_images = 0.0, time.perf_counter(), 0
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        model.train()
        for _ in range(cfg.grad_steps):
            idx = ctx.shard(torch.randint(n, (min(cfg.batch_size, n),), generator=gen)).to(dev)
            x0 = to_float(images[idx])
            if cfg.hflip:
                flip = (torch.rand(len(idx), generator=gen) < 0.5).to(dev).view(-1, 1, 1, 1)
                x0 = torch.where(flip, x0.flip(3), x0)
            y = drop_labels(labels[idx], cfg.p_uncond, model, gen) if conditional else None
            with autocast(dev, dtype):
                loss = diffusion.loss(net, x0, y) / cfg.grad_steps
            scaler.scale(loss).backward()
            window_loss += loss.detach()
            window_images += len(idx) * ctx.world_size
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or float("inf"))
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        ema.update(model, step)
        if step % cfg.log_every == 0 or step == cfg.train_num_steps:
            steps_in_window = (step - 1) % cfg.log_every + 1
            elapsed = time.perf_counter() - window_t
            ctx.log({"loss": ctx.mean(window_loss) / steps_in_window, "lr": opt.param_groups[0]["lr"],
                     "grad_norm": float(grad_norm), "images_per_s": window_images / max(elapsed, 1e-9)}, step)
            window_loss, window_t, window_images = 0.0, time.perf_counter(), 0
        if ctx.is_main and (step % cfg.sample_every == 0 or step == cfg.train_num_steps):
            ctx.log_image("samples", _preview(cfg, ema.model, diffusion, preview_noise, cond, dev), step,
                          nrow=_grid_columns(cond, preview_n))
        if ctx.is_main and cfg.fid_every and (step % cfg.fid_every == 0 or step == cfg.train_num_steps):
            _periodic_fid(cfg, ctx, ema.model, diffusion, cond, data, step)
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(snapshot())
    ctx.save_checkpoint(snapshot())


def _periodic_fid(cfg, ctx, model, diffusion, cond: Conditioning, data, step: int) -> None:
    """FID / KID of fid_n EMA samples (DDIM, sample_steps) against the training data."""
    from ..generate.evaluate import SamplerSettings, comparable_provenance, reference_identity
    from ..generate.sampling import sample
    from ..metrics import compare

    settings = SamplerSettings("ddim" if cfg.sample_steps else "ddpm", cfg.sample_steps or None, 0.0,
                               getattr(cfg, "guidance_scale", 0.0), 64, cfg.seed)
    trained = Trained(model, diffusion, cond, step, "ema", tuple(data.images.shape[1:]))
    labels = preview_labels(cond, cfg.fid_n, "cpu") if cond.kind != "none" else None
    if labels is not None:
        labels = labels[torch.arange(cfg.fid_n) % len(labels)]
    images = sample(trained, cfg.fid_n, batch=64, sampler=settings.sampler, steps=settings.steps,
                    labels=labels, guidance=settings.guidance, seed=cfg.seed)
    reference = reference_identity(data.name, data.images)
    result = compare(images, data.images, identity_b=reference, device=ctx.device)
    ctx.log({"fid": result.fid, "kid": result.kid_mean}, step)
    prov = comparable_provenance(result, reference, settings.provenance(diffusion.T), "ema")
    ctx.store.add_score(ctx.run_id, "fid", result.fid, prov, step=step)
    ctx.store.add_score(ctx.run_id, "kid", result.kid_mean, prov, std=result.kid_std, step=step)


def _grid_columns(cond: Conditioning, n: int) -> int | None:
    return n // cond.size if cond.kind == "class" else None


@torch.no_grad()
def _preview(cfg, model, diffusion, noise, cond: Conditioning, dev) -> torch.Tensor:
    labels = preview_labels(cond, len(noise), dev)
    null = model.null_cond(len(noise), dev) if labels is not None else None
    out, _ = diffusion.sample(model, noise.clone(), sampler="ddim" if cfg.sample_steps else "ddpm",
                              steps=cfg.sample_steps or None, eta=0.0, cond=labels, null_cond=null,
                              guidance=getattr(cfg, "guidance_scale", 0.0))
    return out


def _record_architecture(ctx, model, images, labels, cond: Conditioning) -> None:
    x = to_float(images[:2])
    t = torch.zeros(len(x), dtype=torch.long, device=x.device)
    y = labels[:2] if labels is not None else None
    rows = summarize(model, x, t, y)
    ctx.log_text("model_summary", format_summary(rows, sum(p.numel() for p in model.parameters())))


# -- rebuilding a trained model --------------------------------------------------------------
@dataclass
class Trained:
    """A diffusion model restored from a checkpoint, ready to sample."""

    model: UNet
    diffusion: GaussianDiffusion
    cond: Conditioning
    step: int
    weights: str  # "ema" | "raw"
    image_shape: tuple[int, int, int]

    def null(self, n: int, device) -> Any:
        return self.model.null_cond(n, device)


def restore(cfg, checkpoint_path: str | dict, weights: str = "ema", device: str | torch.device = "cpu") -> Trained:
    """The sampling model in a checkpoint file, or in a state already loaded from one."""
    from ..runner.checkpoint import load

    state = checkpoint_path if isinstance(checkpoint_path, dict) else load(checkpoint_path, map_location=device)
    args = dict(state["model_args"])
    args["dim_mults"], args["attn_resolutions"] = tuple(args["dim_mults"]), tuple(args["attn_resolutions"])
    model = UNet(**args).to(device)
    model.load_state_dict(ema_weights(state["ema"]) if weights == "ema" else state["model"])
    model.eval()
    cond = Conditioning(state["cond_kind"], state["cond_size"], list(state["class_names"]))
    shape = (args["in_channels"], args["image_size"], args["image_size"])
    return Trained(model, make_diffusion(cfg, device), cond, int(state["step"]), weights, shape)

"""The diffusion trainer behind `ddpm` and `cond-ddpm`. Imported in the worker only: it needs
torch. What a trained diffusion model is, and how it samples, is in trained/."""
from __future__ import annotations

import time

import torch

from ..config import ConfigError
from ..models.ema import EMA
from ..models.summary import format_summary, summarize
from ..models.unet import UNet
from ..trained.conditioning import Conditioning, grid_columns, preview_labels
from ..trained.diffusion import Trained, make_diffusion, model_args
from ..models.pixels import VALUE_RANGE, to_float
from .common import (LossGuard, adamw, compiled, fast_layout, amp_dtype, autocast, batch_generator, drawn_to, grad_scaler, report_skipped, restore_state,
                     state_of, to_device)


def drop_labels(labels: torch.Tensor, p: float, model: UNet, gen: torch.Generator) -> torch.Tensor:
    """Replace each label by the null label with probability p (classifier-free guidance training)."""
    if p <= 0:
        return labels
    drop = drawn_to(torch.rand(len(labels), generator=gen) < p, labels.device)
    null = model.null_cond(len(labels), labels.device)
    shape = (-1,) + (1,) * (labels.dim() - 1)
    return torch.where(drop.view(shape), null, labels)


def train(cfg, ctx) -> None:
    """Train a ddpm / cond-ddpm run: grad_steps micro-batches a step, clipped AdamW, EMA; the loss
    averaged over log_every steps, EMA sample grids every sample_every, the periodic FID every
    fid_every, a checkpoint every checkpoint_every (and where a stop leaves it)."""
    from ..data import load_dataset

    dev = ctx.device
    torch.manual_seed(cfg.seed + ctx.rank)  # each data-parallel rank its own noise; DDP syncs the weights
    data = load_dataset(cfg.dataset, cfg.image_size)
    report_skipped(ctx, data)
    conditional = hasattr(cfg, "p_uncond")
    cond = Conditioning.of_dataset(data, conditional)
    if conditional and cond.kind == "none":
        raise ConfigError(f"--dataset {cfg.dataset} has no labels; cond-ddpm needs class or multi-hot labels")
    images = to_device(data.images, dev)
    labels = to_device(data.labels, dev) if conditional else None
    args = model_args(cfg, data.images.shape[1], cond)
    model = fast_layout(UNet(**args).to(dev), dev)
    # DDP on several processes (rank 0's weights first, so before the EMA copy)
    net = compiled(ctx.wrap_model(model), cfg.compile)
    ema = EMA(model, cfg.ema_decay, cfg.ema_every)
    diffusion = make_diffusion(cfg, dev)
    opt = adamw(model.parameters(), dev, lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = amp_dtype(cfg.precision, dev)
    scaler = grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    preview_gen = torch.Generator().manual_seed(cfg.seed + 1)  # the same noises at every grid
    preview_n = len(preview_labels(cond, cfg.num_samples, "cpu")) if conditional else cfg.num_samples
    preview_noise = torch.randn((preview_n, *data.images.shape[1:]), generator=preview_gen).to(dev)
    meta = {"model_args": args, **cond.meta()}
    parts = dict(model=model, ema=ema, optimizer=opt, scaler=scaler, batch_rng=gen)
    guard = LossGuard(cfg.nonfinite_steps, dev)
    # The logged loss is averaged over a window of log_every steps; a stop mid-window keeps its sum.
    window_loss, window_steps = torch.zeros((), device=dev), 0

    state = ctx.load_checkpoint()
    if state:
        restore_state(state, **parts)
        if "loss_window" in state:  # checkpoints before the window was kept start a fresh one
            window_loss = torch.as_tensor(state["loss_window"]["sum"], dtype=torch.float32, device=dev)
            window_steps = int(state["loss_window"]["steps"])
    else:
        _record_architecture(ctx, model, images, labels, cond)
        ctx.event(f"{data.name}: {len(data.images)} images {tuple(data.images.shape[1:])}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters, conditioning: {cond.kind}")

    def snapshot() -> dict:
        guard.check()  # never a checkpoint of weights a non-finite loss has broken
        # the mean over ranks, as logged (every rank calls snapshot at the same step)
        window = {"sum": ctx.mean(window_loss), "steps": window_steps}
        return {**state_of(**parts), **meta, "loss_window": window}

    n = len(images)
    window_t, window_images = time.perf_counter(), 0  # speed: counted from this process's start
    grad_norm = torch.zeros(())
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        model.train()
        step_loss = torch.zeros((), device=dev)
        for micro in range(cfg.grad_steps):
            idx = drawn_to(ctx.shard(torch.randint(n, (min(cfg.batch_size, n),), generator=gen)), dev)
            x0 = to_float(images[idx])
            if cfg.hflip:
                flip = drawn_to(torch.rand(len(idx), generator=gen) < 0.5, dev).view(-1, 1, 1, 1)
                x0 = torch.where(flip, x0.flip(3), x0)
            y = drop_labels(labels[idx], cfg.p_uncond, model, gen) if conditional else None
            # gradients are all-reduced once, with the last micro-batch's backward
            with ctx.accumulating(net, last=micro == cfg.grad_steps - 1):
                with autocast(dev, dtype):
                    loss = diffusion.loss(net, x0, y) / cfg.grad_steps
                scaler.scale(loss).backward()
            step_loss += loss.detach()
            window_images += len(idx) * ctx.world_size
        if guard.update_ok(step_loss, step):
            scaler.unscale_(opt)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or float("inf"))
            scaler.step(opt)
            scaler.update()
            ema.update(model, step)
            window_loss += step_loss
            window_steps += 1
        opt.zero_grad(set_to_none=True)
        if step % cfg.log_every == 0 or step == cfg.train_num_steps:
            guard.check()
            elapsed = time.perf_counter() - window_t
            ctx.log({"loss": ctx.mean(window_loss) / max(window_steps, 1), "lr": opt.param_groups[0]["lr"],
                     "grad_norm": float(grad_norm), "images_per_s": window_images / max(elapsed, 1e-9)}, step)
            window_loss.zero_()
            window_steps, window_t, window_images = 0, time.perf_counter(), 0
        last = step == cfg.train_num_steps
        preview, fid = step % cfg.sample_every == 0 or last, cfg.fid_every and (step % cfg.fid_every == 0 or last)

        def main_work() -> None:  # rank 0 alone; a long chain or a large fid_n keeps it for minutes
            if preview:
                ctx.log_image("samples", _preview(cfg, ema.model, diffusion, preview_noise, cond, dev), step,
                              nrow=grid_columns(cond, preview_n), value_range=VALUE_RANGE)
            if fid:
                _periodic_fid(cfg, ctx, ema.model, diffusion, cond, data, step)
        if preview or fid:
            ctx.alone(main_work)
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(snapshot())
    ctx.save_checkpoint(snapshot())


FID_BATCH_GPU = 256


def _periodic_fid(cfg, ctx, model, diffusion, cond: Conditioning, data, step: int) -> None:
    """FID / KID of fid_n EMA samples (DDIM, sample_steps) against the training data, stored as
    scores with the same provenance `tuigen fid` gives the same settings."""
    from ..metrics import compare
    from ..trained.conditioning import balanced_labels
    from ..trained.provenance import (SamplerSettings, fid_provenance, fid_scores, reference_subset,
                                      sampler_provenance)
    from ..trained.sampling import sample

    # Sampled with `tuigen fid`'s default seed, not the training seed: the sample set is part of
    # the provenance, so runs of a seed sweep stay comparable with each other and with `tuigen fid`.
    sampler = "ddim" if cfg.sample_steps else "ddpm"
    # DDIM at eta 0 draws the same images at any batch size: a GPU takes bigger batches
    batch = FID_BATCH_GPU if sampler == "ddim" and ctx.device.type == "cuda" else SamplerSettings.batch
    settings = SamplerSettings(sampler, cfg.sample_steps or None, 0.0, getattr(cfg, "guidance_scale", 0.0), batch,
                               SamplerSettings.seed)
    trained = Trained(model, diffusion, cond, step, "ema", tuple(data.images.shape[1:]))
    images = sample(trained, cfg.fid_n, batch=settings.batch, sampler=settings.sampler, steps=settings.steps,
                    labels=balanced_labels(cond, cfg.fid_n), guidance=settings.guidance, seed=settings.seed)
    real, reference = reference_subset(data, cfg.fid_ref_n)
    result = compare(images, real, identity_b=reference, device=ctx.device, fid_method=cfg.fid_method)
    ctx.log({"fid": result.fid, "kid": result.kid_mean}, step)
    prov = fid_provenance(result, reference, sampler_provenance(trained, settings), "ema")
    for metric, value, std in fid_scores(result):
        ctx.add_score(metric, value, prov, std=std, step=step)


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

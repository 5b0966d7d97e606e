"""The trainer behind `classifier`. Imported in the worker only: it needs torch."""
from __future__ import annotations

import time

import torch

from ..data import load_dataset
from ..models.classifier import SmallCNN, classification_loss, held_out_scores
from ..models.pixels import to_float
from ..trained.provenance import held_out_provenance
from .common import (LossGuard, adamw, compiled, amp_dtype, autocast, batch_generator, drawn_to, grad_scaler, report_skipped, restore_state,
                     state_of, to_device)


def train(cfg, ctx) -> None:
    """AdamW on random batches; loss every step, held-out loss and accuracy every eval_every
    (the last one also stored as the run's val_acc score), a checkpoint every checkpoint_every
    (and where a stop leaves it)."""
    torch.manual_seed(cfg.seed + ctx.rank)  # each data-parallel rank its own dropout; DDP syncs the weights
    dev = ctx.device
    data = load_dataset(cfg.dataset, cfg.image_size or None)
    report_skipped(ctx, data)
    train_set, val = data.split(cfg.val_fraction, cfg.seed)
    multi = data.label_kind == "multi"
    x_tr, y_tr = to_device(train_set.images, dev), to_device(train_set.labels, dev)
    x_va, y_va = to_device(val.images, dev), to_device(val.labels, dev)
    _, c, h, _ = train_set.images.shape
    model = SmallCNN(c, data.num_classes, h, cfg.width).to(dev)
    net = compiled(ctx.wrap_model(model), cfg.compile)  # DDP on several processes; `model` stays the plain module
    opt = adamw(model.parameters(), dev, lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = amp_dtype(cfg.precision, dev)
    scaler = grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    parts = dict(model=model, optimizer=opt, scaler=scaler, batch_rng=gen)
    guard = LossGuard(cfg.nonfinite_steps, dev)

    def snapshot() -> dict:
        guard.check()  # never a checkpoint of weights a non-finite loss has broken
        return state_of(**parts)
    ctx.event(f"{data.name}: {len(train_set.images)} train / {len(val.images)} held-out images, "
              f"{c}x{h}x{h}, {data.num_classes} {'labels' if multi else 'classes'}")

    state = ctx.load_checkpoint()
    if state:
        restore_state(state, **parts)
    else:
        from ..models.summary import format_summary, summarize

        rows = summarize(model, to_float(x_tr[:2]))
        ctx.log_text("model_summary", format_summary(rows, sum(p.numel() for p in model.parameters())))

    t0, seen = time.perf_counter(), 0
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        model.train()
        idx = drawn_to(ctx.shard(torch.randint(len(x_tr), (min(cfg.batch_size, len(x_tr)),), generator=gen)), dev)
        with autocast(dev, dtype):
            loss = classification_loss(net(to_float(x_tr[idx])), y_tr[idx], multi)
        opt.zero_grad(set_to_none=True)
        if guard.update_ok(loss, step):
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        seen += len(idx) * ctx.world_size
        ctx.log({"loss": ctx.mean(loss.detach()), "lr": opt.param_groups[0]["lr"]}, step)
        if step % cfg.eval_every == 0 or step == cfg.train_num_steps:
            guard.check()
        if ctx.is_main and (step % cfg.eval_every == 0 or step == cfg.train_num_steps):
            scores = held_out_scores(model, x_va, y_va, multi)
            ctx.log({"images_per_s": seen / (time.perf_counter() - t0), **scores}, step)
            t0, seen = time.perf_counter(), 0
            if step == cfg.train_num_steps:  # the finished run's accuracy, for the board
                ctx.add_score("val_acc", scores["val_acc"], held_out_provenance(
                    data, val_fraction=cfg.val_fraction, split_seed=cfg.seed, n=len(val.images)), step=step)
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(snapshot())
    ctx.save_checkpoint(snapshot())  # the final state, or where a stop request left it

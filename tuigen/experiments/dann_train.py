"""The trainer behind `dann` (source-only, dann, target-only). Imported in the worker only:
it needs torch.

One step (Ganin et al. 2016, Algorithm 1), at training progress p = (step - 1) / total_steps:

    lambda_p = lambda_max * (2 / (1 + exp(-gamma p)) - 1)        mu_p = mu_0 / (1 + 10 p)^0.75
    f_s, f_t = G_f(x_s), G_f(x_t)                                 (one pass, shared batch norm)
    L_y = CE(G_y(f_s), y_s)                                       labelled source
    L_d = BCE(G_d(R_lambda([f_s; f_t])), [0...0; 1...1])          unlabelled target (dann only)
    minimise L_y + L_d: G_d descends L_d, while G_f gets -lambda dL_d/df through the GRL.

source-only drops L_d; target-only is L_y on the labelled target split. An epoch is the same
number of steps in every mode (one pass over the larger training split), so the three rows
of the table get the same number of updates. Metrics are logged at the step that ends each
epoch; `loss` (L_y + L_d) every step for the live view.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..data import load_dataset
from ..data.core import ImageDataset
from ..models.dann import DANN, annealed_lr, grad_reverse, grl_lambda
from ..models.pixels import to_float
from ..trained.provenance import held_out_provenance
from .common import (LossGuard, refuse_compile, adamw, amp_dtype, autocast, batch_generator, drawn_to, grad_scaler, report_skipped, restore_state,
                     state_of, to_device)
from .dann import ANNEAL_ALPHA, ANNEAL_BETA, SGD_MOMENTUM, class_mismatch_message

EPOCH_KEYS = ("label_loss", "train_acc", "domain_loss", "domain_acc")


def load_domains(cfg) -> tuple[ImageDataset, ImageDataset]:
    """Both domains at cfg.image_size, 3-channel, with the same class names (else a clear error)."""
    domains = []
    for flag, spec in (("--source", cfg.source), ("--target", cfg.target)):
        data = load_dataset(spec, cfg.image_size, channels=3)
        if data.label_kind != "class":
            raise ConfigError(f"{flag} {spec}: dann needs one class label per image, but this dataset's labels "
                              f"are {data.label_kind!r}")
        domains.append(data)
    src, tgt = domains
    if list(src.class_names) != list(tgt.class_names):
        raise ConfigError(class_mismatch_message(cfg.source, list(src.class_names), cfg.target,
                                                 list(tgt.class_names)))
    return src, tgt


def epoch_order(n: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """`count` indices into n items: whole random permutations back to back (every image once
    per pass, a smaller domain cycles), drawn from the batch RNG so resume is exact."""
    reps = -(-count // n)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(reps)])[:count]


def schedules(cfg, step: int, total: int) -> tuple[float, float, float]:
    """(p, lambda_p, lr) for a step in 1..total."""
    p = (step - 1) / total
    lam = cfg.lambda_max * grl_lambda(p, cfg.gamma) if cfg.mode == "dann" else 0.0
    lr = annealed_lr(cfg.lr, p, ANNEAL_ALPHA, ANNEAL_BETA) if cfg.lr_anneal else cfg.lr
    return p, lam, lr


def make_optimizer(cfg, model: DANN) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=SGD_MOMENTUM, weight_decay=cfg.weight_decay)
    return adamw(model.parameters(), next(model.parameters()).device, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train(cfg, ctx) -> None:
    """Train one mode of the DANN table: `steps_per_epoch` steps an epoch, the loss every step,
    the epoch's averages and both held-out accuracies at its last step, checkpoints every
    checkpoint_every epochs, and the t-SNE figures once the last epoch is done."""
    refuse_compile(cfg, "dann")
    torch.manual_seed(cfg.seed)
    src, tgt = load_domains(cfg)
    for domain in (src, tgt):
        report_skipped(ctx, domain)
    dev = ctx.device
    src_tr, src_va = src.split(cfg.val_fraction, cfg.seed)
    tgt_tr, tgt_va = tgt.split(cfg.val_fraction, cfg.seed)
    dann = cfg.mode == "dann"
    lab = tgt_tr if cfg.mode == "target-only" else src_tr  # the labelled training split

    x_lab, y_lab = to_device(lab.images, dev), to_device(lab.labels, dev)
    x_unl = to_device(tgt_tr.images, dev) if dann else None  # target labels are never read in dann mode
    b_lab, b_unl = min(cfg.batch_size, len(lab)), min(cfg.batch_size, len(tgt_tr))
    spe = cfg.steps_per_epoch or math.ceil(max(len(src_tr), len(tgt_tr)) / cfg.batch_size)
    total = cfg.epochs * spe

    model = DANN(3, src.num_classes, cfg.width, dropout=cfg.dropout, image_size=cfg.image_size).to(dev)
    opt = make_optimizer(cfg, model)
    dtype = amp_dtype(cfg.precision, dev)
    scaler = grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    parts = dict(model=model, optimizer=opt, scaler=scaler, batch_rng=gen)
    guard = LossGuard(cfg.nonfinite_steps, dev)
    orders: list[torch.Tensor] = []  # this epoch's index order per domain
    sums: dict[str, torch.Tensor] = {}  # this epoch's running sums (and "n"), on the device
    ctx.event(f"{cfg.scenario}, mode {cfg.mode}: source {len(src_tr)} train / {len(src_va)} held-out, "
              f"target {len(tgt_tr)} train{' (unlabelled)' if dann else ''} / {len(tgt_va)} held-out, "
              f"3x{cfg.image_size}x{cfg.image_size}, {src.num_classes} classes; "
              f"{cfg.epochs} epochs x {spe} steps")

    state = ctx.load_checkpoint()
    if state:
        restore_state(state, **parts)
        orders = [o.cpu() for o in state["orders"]]
        sums = {k: torch.as_tensor(v, dtype=torch.float64, device=dev) for k, v in state["sums"].items()}
    else:
        from ..models.summary import format_summary, summarize

        rows = summarize(model, to_float(x_lab[:2]))
        ctx.log_text("model_summary", format_summary(rows, sum(p.numel() for p in model.parameters())))

    def snapshot() -> dict:
        guard.check()  # never a checkpoint of weights a non-finite loss has broken
        return {**state_of(**parts), "orders": orders, "sums": {k: float(v) for k, v in sums.items()}}

    held_out = [(to_device(s.images, dev), to_device(s.labels, dev)) for s in (src_va, tgt_va)]
    saved_at = ctx.step if state else -1
    t0, seen = time.perf_counter(), 0
    for step in ctx.steps(ctx.step, total):
        i = (step - 1) % spe  # position within the epoch
        if i == 0 or not orders:
            orders = [epoch_order(len(lab), spe * b_lab, gen)]
            if dann:
                orders.append(epoch_order(len(tgt_tr), spe * b_unl, gen))
        _, lam, lr = schedules(cfg, step, total)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        idx = drawn_to(orders[0][i * b_lab:(i + 1) * b_lab], dev)
        xs, ys = to_float(x_lab[idx]), y_lab[idx]
        xt = to_float(x_unl[drawn_to(orders[1][i * b_unl:(i + 1) * b_unl], dev)]) if dann else None
        with autocast(dev, dtype):
            loss, out = step_losses(model, xs, ys, xt, lam)
        opt.zero_grad(set_to_none=True)
        if guard.update_ok(loss, step):
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v.detach().double()
            sums["n"] = sums.get("n", 0.0) + 1
        seen += len(xs) + (b_unl if dann else 0)
        ctx.log({"loss": loss.detach()}, step)

        if (step % spe == 0) or step == total:  # the step that ends an epoch
            guard.check()
            epoch = math.ceil(step / spe)
            metrics = epoch_metrics(sums, model, held_out)
            metrics.update(lr=lr, epoch=epoch, images_per_s=seen / max(1e-9, time.perf_counter() - t0))
            if dann:
                metrics["lambda"] = lam
            ctx.log(metrics, step)
            for key, split, domain in (("target_acc", tgt_va, tgt), ("source_acc", src_va, src)):
                ctx.add_score(key, metrics[key], held_out_provenance(
                    domain, val_fraction=cfg.val_fraction, split_seed=cfg.seed, n=len(split),
                    source=src.source, target=tgt.source), step=step)
            sums = {}
            t0, seen = time.perf_counter(), 0
            if epoch % cfg.checkpoint_every == 0 or step == total:
                ctx.save_checkpoint(snapshot())
                saved_at = step
    if saved_at != ctx.step:
        ctx.save_checkpoint(snapshot())  # where a stop request left it
    if ctx.step >= total and cfg.tsne_points > 0 and not ctx.should_stop:
        tsne_figures(cfg, ctx, model, src, src_va, tgt_va, dev)


def step_losses(model: DANN, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor | None,
                lam: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss to minimise for one batch, and what is averaged over the epoch (tensors, no sync).
    With a target batch `xt` (dann mode): L_y + L_d, G_d behind the gradient reversal layer."""
    out = {}
    if xt is not None:
        f = model.G_f(torch.cat([xs, xt]))
        logits = model.G_y(f[:len(xs)])
        d_logits = model.G_d(grad_reverse(f, lam)).float()
        d = torch.cat([torch.zeros(len(xs), device=xs.device), torch.ones(len(xt), device=xs.device)])
        out["domain_loss"] = F.binary_cross_entropy_with_logits(d_logits, d)
        out["domain_acc"] = ((d_logits > 0).float() == d).float().mean()
    else:
        logits = model.G_y(model.G_f(xs))
    label_loss = F.cross_entropy(logits.float(), ys)
    out["label_loss"] = label_loss
    out["train_acc"] = (logits.argmax(1) == ys).float().mean()
    loss = label_loss + out["domain_loss"] if xt is not None else label_loss
    return loss, out


def epoch_metrics(sums: dict, model: DANN, held_out: list) -> dict:
    """The epoch's averages and the held-out accuracy of both domains (the epoch's one host sync)."""
    n = max(1.0, float(sums.pop("n", 1.0)))
    metrics = {k: float(sums[k]) / n for k in EPOCH_KEYS if k in sums}
    metrics["source_acc"] = accuracy(model, *held_out[0])
    metrics["target_acc"] = accuracy(model, *held_out[1])
    return metrics


@torch.no_grad()
def features_and_logits(model: DANN, x_u8: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    feats, logits = [], []
    for i in range(0, len(x_u8), batch):
        f = model.G_f(to_float(x_u8[i:i + batch]))
        feats.append(f.float())
        logits.append(model.G_y(f).float())
    return torch.cat(feats), torch.cat(logits)


def accuracy(model: DANN, x_u8: torch.Tensor, y: torch.Tensor) -> float:
    _, logits = features_and_logits(model, x_u8)
    return (logits.argmax(1) == y).float().mean().item()


def tsne_figures(cfg, ctx, model: DANN, src: ImageDataset, src_va: ImageDataset, tgt_va: ImageDataset,
                 dev) -> None:
    """t-SNE of G_f's features of held-out source and target images: one PNG coloured by class,
    one by domain, recorded as image artifacts `tsne_class` and `tsne_domain`."""
    from ..metrics.tsne import subsample, tsne_embed
    from ..viz.plots import scatter_plot

    t = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    parts, labels, domains = [], [], []
    for d, split in enumerate((src_va, tgt_va)):
        keep = subsample(len(split), cfg.tsne_points, rng)
        f, _ = features_and_logits(model, to_device(split.images[keep], dev))
        parts.append(f.cpu().numpy())
        labels.append(split.labels[keep])
        domains.append(np.full(len(keep), d))
    xy = tsne_embed(np.concatenate(parts), seed=cfg.seed)
    labels, domains = np.concatenate(labels), np.concatenate(domains)
    folder = ctx.run_dir / "figures"
    step = ctx.step
    meta = {"points_per_domain": cfg.tsne_points, "source": cfg.source, "target": cfg.target, "mode": cfg.mode,
            "split": "held-out", "init": "pca", "random_state": cfg.seed}
    title = f"t-SNE of G_f features, {cfg.scenario} ({cfg.mode})"
    class_png = scatter_plot(xy, labels, list(src.class_names), folder / f"tsne_class-{step:07d}.png",
                             title=title + ", by class", markers=domains, marker_names=["source", "target"])
    domain_png = scatter_plot(xy, domains, [f"source ({cfg.source})", f"target ({cfg.target})"],
                              folder / f"tsne_domain-{step:07d}.png", title=title + ", by domain")
    ctx.log_artifact("image", class_png, key="tsne_class", step=step, meta=meta)
    ctx.log_artifact("image", domain_png, key="tsne_domain", step=step, meta=meta)
    ctx.event(f"t-SNE of {len(xy)} held-out feature vectors in {time.perf_counter() - t:.1f}s: {folder}")

"""`classifier`: a small CNN on a labelled built-in dataset (or a folder of class folders).

Logs loss and held-out accuracy, checkpoints every N steps, resumes exactly. Multi-label
datasets (shapes) use the i-CLEVR rule: of the k objects in an image, how many are among
the top-k predicted labels.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import knob
from .base import ExperimentKind, Runtime, Score, labelled_dataset


@dataclass
class ClassifierConfig(Runtime):
    dataset: str = knob("digits", "built-in labelled dataset (mnist, digits, mnist-m, shapes, faces) "
                        "or folder:PATH with one subfolder per class", check=labelled_dataset)
    image_size: int = knob(0, "side length images are resized to; 0 keeps the dataset's own", ge=0, le=512)
    batch_size: int = knob(64, "images per step", ge=1, le=65536)
    train_num_steps: int = knob(300, "optimizer steps", ge=1)
    lr: float = knob(1e-3, "AdamW learning rate", gt=0, le=1)
    weight_decay: float = knob(0.0, "AdamW weight decay", ge=0)
    width: int = knob(32, "channels of the first conv block (doubles at each downsampling)", ge=4, le=512)
    val_fraction: float = knob(0.1, "share of the data held out for accuracy", gt=0, lt=1)
    eval_every: int = knob(100, "steps between held-out evaluations", ge=1)
    checkpoint_every: int = knob(100, "steps between checkpoints", ge=1)


def run(cfg: ClassifierConfig, ctx) -> None:
    import time

    import torch
    import torch.nn.functional as F

    from ..data import load_dataset
    from ..models.classifier import SmallCNN
    from .common import amp_dtype, autocast, batch_generator, grad_scaler, to_device, to_float

    torch.manual_seed(cfg.seed + ctx.rank)  # each data-parallel rank its own dropout; DDP syncs the weights
    dev = ctx.device
    data = load_dataset(cfg.dataset, cfg.image_size or None)
    train, val = data.split(cfg.val_fraction, cfg.seed)
    multi = data.label_kind == "multi"
    x_tr, y_tr = to_device(train.images, dev), to_device(train.labels, dev)
    x_va, y_va = to_device(val.images, dev), to_device(val.labels, dev)
    _, c, h, _ = train.images.shape
    model = SmallCNN(c, data.num_classes, h, cfg.width).to(dev)
    net = ctx.wrap_model(model)  # DDP on several processes; `model` stays the plain module
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = amp_dtype(cfg.precision, dev)
    scaler = grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    ctx.event(f"{data.name}: {len(train.images)} train / {len(val.images)} held-out images, "
              f"{c}x{h}x{h}, {data.num_classes} {'labels' if multi else 'classes'}")

    state = ctx.load_checkpoint()
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        gen.set_state(state["batch_rng"].cpu())  # loaded onto the device; generators live on the CPU
    else:
        from ..models.summary import format_summary, summarize

        rows = summarize(model, to_float(x_tr[:2]))
        ctx.log_text("model_summary", format_summary(rows, sum(p.numel() for p in model.parameters())))

    def snapshot() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(), "batch_rng": gen.get_state()}

    def loss_fn(logits, y):
        return F.binary_cross_entropy_with_logits(logits, y) if multi else F.cross_entropy(logits, y)

    t0, seen = time.perf_counter(), 0
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        model.train()
        idx = ctx.shard(torch.randint(len(x_tr), (min(cfg.batch_size, len(x_tr)),), generator=gen)).to(dev)
        with autocast(dev, dtype):
            loss = loss_fn(net(to_float(x_tr[idx])), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        seen += len(idx) * ctx.world_size
        ctx.log({"loss": ctx.mean(loss.detach()), "lr": opt.param_groups[0]["lr"]}, step)
        if ctx.is_main and (step % cfg.eval_every == 0 or step == cfg.train_num_steps):
            ctx.log({"images_per_s": seen / (time.perf_counter() - t0), **evaluate(model, x_va, y_va, multi, loss_fn)}, step)
            t0, seen = time.perf_counter(), 0
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(snapshot())
    ctx.save_checkpoint(snapshot())  # the final state, or where a stop request left it


def evaluate(model, x, y, multi: bool, loss_fn, batch: int = 512) -> dict:
    import torch

    from ..models.classifier import multilabel_accuracy
    from .common import to_float

    model.eval()
    logits = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits.append(model(to_float(x[i:i + batch])).float())
    out = torch.cat(logits)
    acc = multilabel_accuracy(out, y) if multi else (out.argmax(1) == y).float().mean().item()
    return {"val_loss": loss_fn(out, y).item(), "val_acc": acc}


KIND = ExperimentKind(
    name="classifier",
    config=ClassifierConfig,
    entry="tuigen.experiments.classifier:run",
    summary="a small CNN on a labelled dataset: loss and held-out accuracy (also the evaluator for conditional runs)",
    scores=(Score("val_acc", higher_is_better=True, label="accuracy"),),
    data_parallel=True,
    demo=({"dataset": "digits", "train_num_steps": 300, "eval_every": 50},
          {"dataset": "mnist", "image_size": 16, "train_num_steps": 400, "eval_every": 50},
          {"dataset": "shapes", "image_size": 16, "train_num_steps": 300, "eval_every": 50}),
)

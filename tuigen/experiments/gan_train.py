"""The GAN trainer behind `dcgan`, `cgan` and `stylegan`. Imported in the worker only: it
needs torch. How G and D are built, called and restored for sampling is in trained/gan.py.

One step (Goodfellow et al. 2014, Algorithm 1, with the non-saturating G loss of sec. 3):

    d_steps times:  x ~ data, z ~ N(0, I)
                    L_D = -log sigma(D(x)) - log(1 - sigma(D(G(z))))      (bce, as softplus of logits)
                       or max(0, 1 - D(x)) + max(0, 1 + D(G(z)))          (hinge)
    stylegan, every r1_every steps:  L_R1 = r1_every * gamma/2 E||grad_x D(x)||^2  (lazy R1)
    once:           L_G = -log sigma(D(G(z)))  (bce)  or  -D(G(z))  (hinge)

Logged: d_loss, g_loss, d_x = D(x) and d_g_z = D(G(z)) (mean probabilities for bce, mean raw
scores for hinge), images_per_s, r1 (the unscaled E||grad D(x)||^2, when it is computed) and,
every sample_every steps, diversity_ratio: mean pairwise distance of a batch of fakes over
that of a batch of reals. Below `collapse_ratio`, one warning event: possible mode collapse.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError
from ..models import stylegan
from ..models.ema import EMA
from ..models.summary import format_summary, summarize
from ..trained.conditioning import Conditioning, preview_labels
from ..trained.gan import MIXING_SOURCES, build_discriminator, build_generator, model_args, run_d, run_g
from ..models.pixels import VALUE_RANGE, to_float
from .common import (LossGuard, refuse_compile, amp_dtype, autocast, batch_generator, drawn_to, grad_scaler, report_skipped, restore_state,
                     state_of, to_device)

WINDOW_KEYS = ("d_loss", "d_x", "d_g_z", "g_loss")


# -- losses (logits in, scalar out) -----------------------------------------------------------
def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # -log sigma(D(x)) - log(1 - sigma(D(G(z))))


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()  # non-saturating: -log sigma(D(G(z)))


def d_score(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """What is logged as D(x) / D(G(z)): a probability for bce, the raw score for hinge."""
    return logits.mean() if kind == "hinge" else torch.sigmoid(logits).mean()


# -- mode collapse ----------------------------------------------------------------------------
def batch_diversity(images: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the (flattened) images of a batch."""
    flat = images.detach().flatten(1).float()
    return float(torch.pdist(flat).mean()) if len(flat) > 1 else 0.0


@dataclass
class CollapseWatch:
    """Warns once when fakes are far less varied than reals (diversity ratio < threshold), from
    step `after` on: every freshly initialised generator draws near-identical samples."""

    threshold: float
    after: int = 0
    warned: bool = False

    def check(self, ratio: float, step: int) -> str | None:
        if self.warned or step < self.after or ratio >= self.threshold:
            return None
        self.warned = True
        return (f"possible mode collapse at step {step}: generated samples are {ratio:.2f}x as varied as real "
                f"ones (mean pairwise distance; warning below {self.threshold:g})")


# -- the networks -----------------------------------------------------------------------------
def conditioning(cfg, data) -> Conditioning:
    if cfg.conditional and data.label_kind == "none":
        raise ConfigError(f"--dataset {cfg.dataset} has no labels; cgan needs class or multi-hot labels")
    return Conditioning.of_dataset(data, cfg.conditional)


# -- training ---------------------------------------------------------------------------------
class GANTraining:
    """G, D, their optimizers and scalers, the batch RNG and the loss window of one run: what a
    step changes and a checkpoint keeps. The steps themselves are the methods below."""

    def __init__(self, cfg, data, dev):
        self.cfg, self.dev, self.family = cfg, dev, cfg.family
        self.stylish = cfg.family == "stylegan"
        self.cond = conditioning(cfg, data)
        self.images = to_device(data.images, dev)
        self.labels = to_device(data.labels, dev) if self.cond.kind != "none" else None
        self.g_args, self.d_args = model_args(cfg, data.channels, self.cond)
        self.G = build_generator(self.family, self.g_args).to(dev)
        self.D = build_discriminator(self.family, self.d_args).to(dev)
        self.ema = EMA(self.G, cfg.ema_decay, every=1) if self.stylish else None  # dcgan/cgan: none, as in the paper
        self.r1_on = self.stylish and cfg.r1_gamma > 0
        c = cfg.r1_every / (cfg.r1_every + 1) if self.r1_on else 1.0  # lazy regularisation (StyleGAN2 App. B)
        fused = dev.type == "cuda"  # one kernel for all parameters on a GPU
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr * c, betas=(cfg.beta1 ** c, cfg.beta2 ** c),
                                      fused=fused)
        self.dtype = amp_dtype(cfg.precision, dev)
        self.scaler_g, self.scaler_d = grad_scaler(dev, self.dtype), grad_scaler(dev, self.dtype)
        self.gen = batch_generator(cfg.seed)
        self.watch = CollapseWatch(cfg.collapse_ratio, cfg.collapse_after)
        self.guard = LossGuard(cfg.nonfinite_steps, dev)
        # running sums on the device, read once per log_every (no host sync per step)
        self.window = {k: torch.zeros((), dtype=torch.float64, device=dev) for k in (*WINDOW_KEYS, "n_d", "n_g")}
        self.images_seen = 0

    def parts(self) -> dict:
        return dict(g=self.G, d=self.D, g_ema=self.ema, opt_g=self.opt_g, opt_d=self.opt_d, scaler_g=self.scaler_g,
                    scaler_d=self.scaler_d, batch_rng=self.gen)

    def snapshot(self) -> dict:
        self.guard.check()  # never a checkpoint of weights a non-finite loss has broken
        return {**state_of(**self.parts()), "collapse_warned": self.watch.warned,
                "window": {k: v.clone() for k, v in self.window.items()},
                "family": self.family, "g_args": self.g_args, "d_args": self.d_args, **self.cond.meta()}

    def restore(self, state: dict) -> None:
        restore_state(state, **self.parts())
        self.watch.warned = bool(state["collapse_warned"])
        for k, v in state["window"].items():
            self.window[k].copy_(v)

    def real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        bs = self.cfg.batch_size
        idx = drawn_to(torch.randint(len(self.images), (bs,), generator=self.gen), self.dev)
        x = to_float(self.images[idx])
        if self.cfg.hflip:
            flip = (torch.rand(bs, generator=self.gen) < 0.5).to(self.dev).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(3), x)
        return x, (self.labels[idx] if self.labels is not None else None)

    def latents(self) -> tuple[torch.Tensor, tuple | None]:
        cfg, gen = self.cfg, self.gen
        z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=gen).to(self.dev)
        mix = None
        if self.stylish and cfg.mixing_prob > 0 and float(torch.rand((), generator=gen)) < cfg.mixing_prob:
            # style-mixing regularisation (StyleGAN sec. 3.1): a second z from a random layer on
            mix = (torch.randn(cfg.batch_size, cfg.latent_dim, generator=gen).to(self.dev),
                   int(torch.randint(1, self.G.num_ws, (), generator=gen)))
        return z, mix

    def d_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D: real up, fake down. Returns the real batch (lazy R1 is taken on it)."""
        family, loss = self.family, self.cfg.loss
        x, y = self.real_batch()
        z, mix = self.latents()
        with torch.no_grad(), autocast(self.dev, self.dtype):
            fake = run_g(family, self.G, z, y, mix)
        with autocast(self.dev, self.dtype):
            real_logit = run_d(family, self.D, x, y).float()
            fake_logit = run_d(family, self.D, fake, y).float()
        d_loss = d_loss_fn(loss, real_logit, fake_logit)
        self.opt_d.zero_grad(set_to_none=True)
        if not self.guard.update_ok(d_loss, step):
            return x, y
        self.scaler_d.scale(d_loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        w = self.window
        w["d_loss"] += d_loss.detach().double()
        w["d_x"] += d_score(loss, real_logit.detach()).double()
        w["d_g_z"] += d_score(loss, fake_logit.detach()).double()
        w["n_d"] += 1
        self.images_seen += self.cfg.batch_size
        return x, y

    def g_step(self, y: torch.Tensor | None, step: int) -> None:
        """G: fool D (through D, whose weights stay fixed), then the EMA copy follows."""
        z, mix = self.latents()
        self.D.requires_grad_(False)
        with autocast(self.dev, self.dtype):
            g_loss = g_loss_fn(self.cfg.loss, run_d(self.family, self.D, run_g(self.family, self.G, z, y, mix), y).float())
        self.opt_g.zero_grad(set_to_none=True)
        if not self.guard.update_ok(g_loss, step):
            self.D.requires_grad_(True)
            return
        self.scaler_g.scale(g_loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        self.window["g_loss"] += g_loss.detach().double()
        self.window["n_g"] += 1
        if self.ema is not None:
            self.ema.update(self.G, step)

    def take_window(self, elapsed: float) -> dict:
        """The window's averages (one host sync), then an empty window."""
        out = {**_averages(self.window), "images_per_s": self.images_seen / max(elapsed, 1e-9)}
        for v in self.window.values():
            v.zero_()
        self.images_seen = 0
        return out


def train(cfg, ctx) -> None:
    """Train a dcgan / cgan / stylegan run: d_steps D updates, lazy R1, one G update per step;
    losses averaged over log_every steps, fixed-noise grids and the collapse check every
    sample_every, a checkpoint every checkpoint_every (and where a stop leaves it)."""
    refuse_compile(cfg, "a GAN")
    from ..data import load_dataset

    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.image_size)
    report_skipped(ctx, data)
    t = GANTraining(cfg, data, ctx.device)
    fixed = _fixed_inputs(cfg, t.cond, t.images, t.labels, ctx.device)
    state = ctx.load_checkpoint()
    if state:
        t.restore(state)
    else:
        _record_architecture(ctx, cfg.family, t.G, t.D, fixed)
        ctx.log_image("reals", t.images[fixed["real_idx"][:cfg.num_samples]], 0)  # uint8 as stored
        ctx.event(f"{data.name}: {len(data.images)} images {tuple(data.images.shape[1:])}, "
                  f"G {_params(t.G):,} and D {_params(t.D):,} parameters, conditioning: {t.cond.kind}")

    t0 = time.perf_counter()
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        for _ in range(cfg.d_steps):
            x, y = t.d_step(step)
        if t.r1_on and step % cfg.r1_every == 0:  # lazy R1 on the last real batch, in fp32
            ctx.log({"r1": _r1_step(cfg.family, t.D, t.opt_d, x, y, cfg.r1_gamma, cfg.r1_every, t.guard, step)}, step)
        t.g_step(y, step)
        last = step == cfg.train_num_steps
        if step % cfg.log_every == 0 or last:
            t.guard.check()
            ctx.log(t.take_window(time.perf_counter() - t0), step)
            t0 = time.perf_counter()
        if step % cfg.sample_every == 0 or last:
            _previews(ctx, cfg, t.G, t.ema, fixed, t.watch, step)
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(t.snapshot())
    ctx.save_checkpoint(t.snapshot())


def _r1_step(family, D, opt_d, x, y, gamma: float, every: int, guard: LossGuard, step: int) -> float:
    """R1 (Mescheder et al. 2018): gamma/2 E||grad_x D(x)||^2, times `every` when applied lazily."""
    x = x.detach().requires_grad_(True)
    logits = run_d(family, D, x, y).float()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = grad.square().sum((1, 2, 3)).mean()
    opt_d.zero_grad(set_to_none=True)
    loss = penalty * (gamma / 2) * every
    if guard.update_ok(loss, step):
        loss.backward()
        opt_d.step()
    return float(penalty.detach())


def _averages(window: dict) -> dict:
    n_d, n_g = max(float(window["n_d"]), 1.0), max(float(window["n_g"]), 1.0)
    out = {k: float(window[k]) / n_d for k in ("d_loss", "d_x", "d_g_z")}
    out["g_loss"] = float(window["g_loss"]) / n_g
    return out


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _fixed_inputs(cfg, cond: Conditioning, images, labels, dev) -> dict:
    """The same noises (and labels) at every grid, and a fixed batch of reals for the diversity
    reference; drawn from their own RNGs so they never disturb the training stream."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    y = preview_labels(cond, cfg.num_samples, dev)
    count = len(y) if y is not None else cfg.num_samples
    fixed = {"z": torch.randn(count, cfg.latent_dim, generator=g).to(dev), "y": y,
             "nrow": count // cond.size if cond.kind == "class" else None}
    if cfg.family == "stylegan":
        fixed["z_rows"] = torch.randn(MIXING_SOURCES, cfg.latent_dim, generator=g).to(dev)
        fixed["z_cols"] = torch.randn(MIXING_SOURCES, cfg.latent_dim, generator=g).to(dev)
    real_gen = torch.Generator().manual_seed(cfg.seed + 2)
    idx = torch.randperm(len(images), generator=real_gen)[:max(count, 2)]
    fixed["real_idx"] = idx.to(images.device)
    fixed["real_diversity"] = batch_diversity(to_float(images[fixed["real_idx"]]))
    fixed["real_example"] = to_float(images[fixed["real_idx"][:2]]).to(dev)
    fixed["label_example"] = labels[fixed["real_idx"][:2]].to(dev) if labels is not None else None
    return fixed


@torch.no_grad()
def _previews(ctx, cfg, G, ema: EMA | None, fixed: dict, watch: CollapseWatch, step: int) -> None:
    """The fixed-noise grid(s) and the mode-collapse check. Uses no training RNG: stylegan
    grids use the model's stored noise maps (noise_mode 'const'), DCGAN's BatchNorm its
    running statistics."""
    family, kw = cfg.family, {}
    if family == "stylegan":
        kw = {"truncation_psi": cfg.truncation, "noise_mode": "const"}
    G.eval()
    fakes = run_g(family, G, fixed["z"], fixed["y"], **kw).float()
    G.train()
    ctx.log_image("samples", fakes, step, nrow=fixed["nrow"], value_range=VALUE_RANGE)
    if ema is not None:
        ctx.log_image("samples_ema", run_g(family, ema.model, fixed["z"], None, **kw).float(), step,
                      value_range=VALUE_RANGE)
        grid = stylegan.mixing_grid(ema.model, fixed["z_rows"], fixed["z_cols"], truncation_psi=cfg.truncation)
        ctx.log_image("style_mixing", grid.float(), step, nrow=MIXING_SOURCES + 1, value_range=VALUE_RANGE)
    ratio = batch_diversity(fakes) / max(fixed["real_diversity"], 1e-8)
    ctx.log({"diversity_ratio": ratio}, step)
    message = watch.check(ratio, step)
    if message:
        ctx.event(message, "warning")


def _record_architecture(ctx, family: str, G, D, fixed: dict) -> None:
    x, y = fixed["real_example"], fixed["label_example"]
    z = fixed["z"][:2]
    depth = 3 if family == "stylegan" else 2
    g_in = (z,) if family == "stylegan" else (z, y)
    d_in = (x,) if family == "stylegan" else (x, y)
    text = ("Generator\n" + format_summary(summarize(G, *g_in, depth=depth), _params(G))
            + "\n\nDiscriminator\n" + format_summary(summarize(D, *d_in, depth=depth), _params(D)))
    ctx.log_text("model_summary", text)

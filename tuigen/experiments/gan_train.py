"""The GAN trainer behind `dcgan`, `cgan` and `stylegan`, and rebuilding a trained generator
for sampling. Imported in the worker (and by sampling commands) only: it needs torch.

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
from ..models import dcgan, stylegan
from ..models.ema import EMA, ema_weights
from ..models.summary import format_summary, summarize
from .common import amp_dtype, autocast, batch_generator, grad_scaler, to_device, to_float
from .diffusion_train import Conditioning, preview_labels

MIXING_SOURCES = 4  # the style-mixing grid: 4 row sources x 4 column sources
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
    if not cfg.conditional:
        return Conditioning("none", 0, [])
    if data.label_kind == "none":
        raise ConfigError(f"--dataset {cfg.dataset} has no labels; cgan needs class or multi-hot labels")
    return Conditioning(data.label_kind, data.num_classes, list(data.class_names))


def model_args(cfg, channels: int, cond: Conditioning) -> tuple[dict, dict]:
    """Constructor arguments of G and D (stored in checkpoints, so `restore` needs no config)."""
    if cfg.family == "stylegan":
        return (dict(image_size=cfg.image_size, channels=channels, z_dim=cfg.latent_dim, w_dim=cfg.w_dim,
                     mapping_layers=cfg.mapping_layers, width=cfg.g_width),
                dict(image_size=cfg.image_size, channels=channels, width=cfg.d_width, mbstd=cfg.mbstd))
    label = dict(cond_kind=cond.kind, cond_size=cond.size)
    return (dict(image_size=cfg.image_size, channels=channels, latent_dim=cfg.latent_dim, width=cfg.g_width,
                 embed_dim=getattr(cfg, "embed_dim", 64), **label),
            dict(image_size=cfg.image_size, channels=channels, width=cfg.d_width,
                 d_cond=getattr(cfg, "d_cond", "concat"), **label))


def build_generator(family: str, args: dict) -> nn.Module:
    return (stylegan.Generator if family == "stylegan" else dcgan.Generator)(**args)


def build_discriminator(family: str, args: dict) -> nn.Module:
    return (stylegan.Discriminator if family == "stylegan" else dcgan.Discriminator)(**args)


def run_g(family: str, g: nn.Module, z: torch.Tensor, y: torch.Tensor | None, mix=None, **kw) -> torch.Tensor:
    """G(z, y); for stylegan `mix` = (z2, crossover) mixes styles and kw passes truncation/noise."""
    if family == "stylegan":
        z2, crossover = mix or (None, None)
        return g(z, z2, crossover, **kw)
    return g(z, y)


def run_d(family: str, d: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return d(x) if family == "stylegan" else d(x, y)


# -- training ---------------------------------------------------------------------------------
def train(cfg, ctx) -> None:
    from ..data import load_dataset

    dev, family, stylish = ctx.device, cfg.family, cfg.family == "stylegan"
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.image_size)
    cond = conditioning(cfg, data)
    images = to_device(data.images, dev)
    labels = to_device(data.labels, dev) if cond.kind != "none" else None
    g_args, d_args = model_args(cfg, data.channels, cond)
    G, D = build_generator(family, g_args).to(dev), build_discriminator(family, d_args).to(dev)
    ema = EMA(G, cfg.ema_decay, every=1) if stylish else None  # dcgan/cgan: no EMA, as in the paper
    r1_on = stylish and cfg.r1_gamma > 0
    c = cfg.r1_every / (cfg.r1_every + 1) if r1_on else 1.0  # lazy regularisation (StyleGAN2 Appendix B)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * c, betas=(cfg.beta1 ** c, cfg.beta2 ** c))
    dtype = amp_dtype(cfg.precision, dev)
    scaler_g, scaler_d = grad_scaler(dev, dtype), grad_scaler(dev, dtype)
    gen = batch_generator(cfg.seed)
    fixed = _fixed_inputs(cfg, cond, images, labels, dev)
    watch = CollapseWatch(cfg.collapse_ratio, cfg.collapse_after)
    window = {k: torch.zeros((), dtype=torch.float64, device=dev) for k in (*WINDOW_KEYS, "n_d", "n_g")}
    meta = {"family": family, "g_args": g_args, "d_args": d_args, "cond_kind": cond.kind, "cond_size": cond.size,
            "class_names": cond.names}

    state = ctx.load_checkpoint()
    if state:
        G.load_state_dict(state["g"])
        D.load_state_dict(state["d"])
        if ema is not None:
            ema.load_state_dict(state["g_ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        scaler_g.load_state_dict(state["scaler_g"])
        scaler_d.load_state_dict(state["scaler_d"])
        gen.set_state(state["batch_rng"].cpu())
        watch.warned = bool(state["collapse_warned"])
        for k, v in state["window"].items():
            window[k].copy_(v)
    else:
        _record_architecture(ctx, family, G, D, fixed)
        ctx.log_image("reals", to_float(images[fixed["real_idx"][:cfg.num_samples]]), 0)
        ctx.event(f"{data.name}: {len(data.images)} images {tuple(data.images.shape[1:])}, "
                  f"G {_params(G):,} and D {_params(D):,} parameters, conditioning: {cond.kind}")

    def snapshot() -> dict:
        return {"g": G.state_dict(), "d": D.state_dict(), **({"g_ema": ema.state_dict()} if ema else {}),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler_g": scaler_g.state_dict(),
                "scaler_d": scaler_d.state_dict(), "batch_rng": gen.get_state(), "collapse_warned": watch.warned,
                "window": {k: v.clone() for k, v in window.items()}, **meta}

    n, bs = len(images), cfg.batch_size

    def real_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(n, (bs,), generator=gen).to(dev)
        x = to_float(images[idx])
        if cfg.hflip:
            flip = (torch.rand(bs, generator=gen) < 0.5).to(dev).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(3), x)
        return x, (labels[idx] if labels is not None else None)

    def latents() -> tuple[torch.Tensor, tuple | None]:
        z = torch.randn(bs, cfg.latent_dim, generator=gen).to(dev)
        mix = None
        if stylish and cfg.mixing_prob > 0 and float(torch.rand((), generator=gen)) < cfg.mixing_prob:
            # style-mixing regularisation (StyleGAN sec. 3.1): a second z from a random layer on
            mix = (torch.randn(bs, cfg.latent_dim, generator=gen).to(dev),
                   int(torch.randint(1, G.num_ws, (), generator=gen)))
        return z, mix

    t0, images_seen = time.perf_counter(), 0
    for step in ctx.steps(ctx.step, cfg.train_num_steps):
        for _ in range(cfg.d_steps):  # -- D: real up, fake down
            x, y = real_batch()
            z, mix = latents()
            with torch.no_grad(), autocast(dev, dtype):
                fake = run_g(family, G, z, y, mix)
            with autocast(dev, dtype):
                real_logit = run_d(family, D, x, y).float()
                fake_logit = run_d(family, D, fake, y).float()
            d_loss = d_loss_fn(cfg.loss, real_logit, fake_logit)
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(d_loss).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
            window["d_loss"] += d_loss.detach().double()
            window["d_x"] += d_score(cfg.loss, real_logit.detach()).double()
            window["d_g_z"] += d_score(cfg.loss, fake_logit.detach()).double()
            window["n_d"] += 1
            images_seen += bs
        if r1_on and step % cfg.r1_every == 0:  # -- lazy R1 on the last real batch, in fp32
            ctx.log({"r1": _r1_step(family, D, opt_d, x, y, cfg.r1_gamma, cfg.r1_every)}, step)

        D.requires_grad_(False)  # -- G: fool D
        z, mix = latents()
        with autocast(dev, dtype):
            g_loss = g_loss_fn(cfg.loss, run_d(family, D, run_g(family, G, z, y, mix), y).float())
        opt_g.zero_grad(set_to_none=True)
        scaler_g.scale(g_loss).backward()
        scaler_g.step(opt_g)
        scaler_g.update()
        D.requires_grad_(True)
        window["g_loss"] += g_loss.detach().double()
        window["n_g"] += 1
        if ema is not None:
            ema.update(G, step)

        last = step == cfg.train_num_steps
        if step % cfg.log_every == 0 or last:
            elapsed = time.perf_counter() - t0
            ctx.log({**_averages(window), "images_per_s": images_seen / max(elapsed, 1e-9)}, step)
            for v in window.values():
                v.zero_()
            t0, images_seen = time.perf_counter(), 0
        if step % cfg.sample_every == 0 or last:
            _previews(ctx, cfg, G, ema, fixed, watch, step)
        if step % cfg.checkpoint_every == 0:
            ctx.save_checkpoint(snapshot())
    ctx.save_checkpoint(snapshot())


def _r1_step(family, D, opt_d, x, y, gamma: float, every: int) -> float:
    """R1 (Mescheder et al. 2018): gamma/2 E||grad_x D(x)||^2, times `every` when applied lazily."""
    x = x.detach().requires_grad_(True)
    logits = run_d(family, D, x, y).float()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = grad.square().sum((1, 2, 3)).mean()
    opt_d.zero_grad(set_to_none=True)
    (penalty * (gamma / 2) * every).backward()
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
    ctx.log_image("samples", fakes, step, nrow=fixed["nrow"])
    if ema is not None:
        ctx.log_image("samples_ema", run_g(family, ema.model, fixed["z"], None, **kw).float(), step)
        grid = stylegan.mixing_grid(ema.model, fixed["z_rows"], fixed["z_cols"], truncation_psi=cfg.truncation)
        ctx.log_image("style_mixing", grid.float(), step, nrow=MIXING_SOURCES + 1)
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


# -- rebuilding a trained generator -----------------------------------------------------------
@dataclass
class TrainedGAN:
    """A generator restored from a checkpoint, ready to sample.

    `weights` is what was loaded: "ema" (stylegan's EMA generator) or "raw". dcgan and cgan
    keep no EMA (as in the DCGAN paper), so for them "ema" falls back to the raw G and
    `weights` says "raw"."""

    generator: nn.Module
    family: str  # "dcgan" (also cgan) | "stylegan"
    cond: Conditioning
    image_shape: tuple[int, int, int]
    step: int
    weights: str
    latent_dim: int
    device: torch.device

    def latents(self, n: int, seed: int) -> torch.Tensor:
        """n latents from `seed`, drawn at once, so a sample set never depends on the batch size."""
        return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def generate(self, n: int, labels: torch.Tensor | None = None, seed: int = 0, truncation_psi: float = 1.0,
                 batch_size: int = 256) -> torch.Tensor:
        """n images in [-1, 1], (N, C, H, W) float on the CPU. cgan needs `labels`: (N,) class
        indices or (N, K) multi-hot (one row is repeated for all N); truncation is stylegan's."""
        y = self.check_labels(labels, n)
        if truncation_psi != 1.0 and self.family != "stylegan":
            raise ValueError("truncation psi applies to stylegan runs only")
        z = self.latents(n, seed)
        kw = {"truncation_psi": truncation_psi, "noise_mode": "const"} if self.family == "stylegan" else {}
        out = [run_g(self.family, self.generator, z[i:i + batch_size].to(self.device),
                     None if y is None else y[i:i + batch_size].to(self.device), **kw).float().clamp(-1, 1).cpu()
               for i in range(0, n, batch_size)]
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    @torch.no_grad()
    def mixing_grid(self, seed: int = 0, rows: int = MIXING_SOURCES, cols: int = MIXING_SOURCES,
                    truncation_psi: float = 1.0, crossover: int | None = None) -> torch.Tensor:
        """stylegan's style-mixing figure: (rows+1) x (cols+1) images, row by row (see models.stylegan)."""
        if self.family != "stylegan":
            raise ValueError("style mixing needs a stylegan run")
        z = self.latents(rows + cols, seed).to(self.device)
        grid = stylegan.mixing_grid(self.generator, z[:rows], z[rows:], crossover, truncation_psi)
        return grid.float().clamp(-1, 1).cpu()

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        kind, size = self.cond.kind, self.cond.size
        if kind == "none":
            if labels is not None:
                raise ValueError("this generator is unconditional: labels are not used")
            return None
        if labels is None:
            wanted = "class indices" if kind == "class" else "multi-hot labels"
            raise ValueError(f"this generator is conditional: give {wanted}")
        labels = torch.as_tensor(labels)
        if kind == "class":
            labels = labels.long().reshape(-1)
            if len(labels) and (labels.min() < 0 or labels.max() >= size):
                raise ValueError(f"class labels must be in 0..{size - 1}, got {labels.tolist()[:10]}")
        else:
            labels = labels.float().reshape(-1, size) if labels.numel() % size == 0 else labels
            if labels.dim() != 2 or labels.shape[1] != size:
                raise ValueError(f"multi-hot labels must have {size} entries per image, "
                                 f"got shape {tuple(labels.shape)}")
        if len(labels) == 1:
            labels = labels.expand(n, *labels.shape[1:])
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} images")
        return labels


def restore(cfg, checkpoint_path: str | dict, weights: str = "ema", device: str | torch.device = "cpu") -> TrainedGAN:
    """The generator saved in a checkpoint (its constructor arguments are in it, so `cfg` is not
    needed to rebuild it), in eval mode on `device`; or from a state already loaded from one."""
    from ..runner.checkpoint import load

    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    device = torch.device(device)
    state = checkpoint_path if isinstance(checkpoint_path, dict) else load(checkpoint_path, map_location=device)
    family, args = state["family"], dict(state["g_args"])
    G = build_generator(family, args).to(device)
    use_ema = weights == "ema" and "g_ema" in state
    G.load_state_dict(ema_weights(state["g_ema"]) if use_ema else state["g"])
    G.eval().requires_grad_(False)
    cond = Conditioning(state["cond_kind"], int(state["cond_size"]), list(state["class_names"]))
    shape = (int(args["channels"]), int(args["image_size"]), int(args["image_size"]))
    latent = int(args["z_dim"] if family == "stylegan" else args["latent_dim"])
    return TrainedGAN(G, family, cond, shape, int(state["step"]), "ema" if use_ema else "raw", latent, device)

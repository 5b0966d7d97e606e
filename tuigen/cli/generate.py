"""CLI verbs that draw from a trained run: sample, grid, strip, eta-grid, interp, fuse.

They run in this process (torch is imported only when one of them is used), show a
progress bar with it/s, write into the run's folder, and record what they wrote as
artifacts with the settings that made them."""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from .argtypes import bounded, device

if TYPE_CHECKING:
    from ..store import Store

out = Console(highlight=False, stderr=True)

GUIDANCE_HELP = "classifier-free guidance w: eps = (1+w) eps_cond - w eps_uncond; 0 = unguided"


def _common(p: argparse.ArgumentParser, sampler: bool = True) -> None:
    p.add_argument("run_id", type=int)
    p.add_argument("--checkpoint", help="a step number or a checkpoint file (default: the newest)")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default ema)")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=bounded(int, 0), default=0)
    p.add_argument("--out", help="output path (default: inside the run's folder)")
    if sampler:
        p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
        p.add_argument("--steps", type=bounded(int, 1), default=50, help="DDIM steps (ddpm always runs all timesteps)")
        p.add_argument("--eta", type=bounded(float, 0), default=0.0, help="DDIM noise: 0 deterministic, 1 DDPM-like")
    p.add_argument("--guidance", type=float, default=0.0, help=GUIDANCE_HELP)


def add_parsers(sub) -> None:
    s = sub.add_parser("sample", help="draw N images from a diffusion run to PNGs and/or one .npz",
                       description="Draw N images in batches from a run's checkpoint.",
                       epilog="example: tuigen sample 3 -n 2048 --sampler ddim --steps 50 --format npz")
    _common(s)
    s.add_argument("-n", "--num", type=bounded(int, 1), default=64, help="how many images (default 64)")
    s.add_argument("--batch", type=bounded(int, 1), default=64, help="images per batch (default 64)")
    s.add_argument("--format", choices=("png", "npz", "both"), default="both")
    s.add_argument("--labels", help="class runs: 0,1,2 (cycled; default each class in turn); "
                   "multi-hot runs: test or new_test")
    s.add_argument("--truncation", type=float, default=1.0,
                   help="style-based GANs: truncation psi (1 = none, 0 = the mean image)")
    s.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="diffusion runs: the network under autocast in bf16 / fp16 (faster on a GPU; "
                        "default fp32, as scores are computed)")

    g = sub.add_parser("grid", help="class grid: rows = classes, columns = fixed noises")
    _common(g)
    g.add_argument("--columns", type=bounded(int, 1), default=10)

    st = sub.add_parser("strip", help="denoising strip: x_t and predicted x_0 along one DDPM chain")
    _common(st, sampler=False)
    st.add_argument("--timesteps", default="", help="t values to show, e.g. 999,800,600,400,200,0 "
                    "(default: 8 evenly spaced)")
    st.add_argument("--label", type=int, help="class to condition on (class runs)")

    e = sub.add_parser("eta-grid", help="the same saved noises sampled with several DDIM eta values")
    _common(e, sampler=False)
    e.add_argument("--noise", help="a .pt tensor of noises (N, C, H, W); default: 4 drawn with --seed, saved")
    e.add_argument("--etas", default="0,0.25,0.5,0.75,1")
    e.add_argument("--steps", type=bounded(int, 1), default=50)
    e.add_argument("--label", type=int)

    i = sub.add_parser("interp", help="interpolate between two saved noises: slerp row and lerp row")
    _common(i, sampler=False)
    i.add_argument("--noise", help="a .pt tensor with at least 2 noises; default: drawn with --seed, saved")
    i.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    i.add_argument("--steps", type=bounded(int, 1), default=50)
    i.add_argument("--label", type=int)

    f = sub.add_parser("fuse", help="fuse two images: noise both to step t, mix with lambda, denoise",
                       epilog="examples:\n  tuigen fuse 3 --a cat1.png --b cat2.png --t 500 --lam 0.5\n"
                              "  tuigen fuse 3 --pairs photos/ -n 50",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(f)
    f.set_defaults(sampler="ddpm")
    f.add_argument("--a", help="first image")
    f.add_argument("--b", help="second image")
    f.add_argument("--pairs", help="a folder of images: fuse -n random pairs from it")
    f.add_argument("-n", "--num", type=bounded(int, 1), default=50, help="pairs to fuse with --pairs")
    f.add_argument("--t", type=int, default=None, help="step to noise both images to (default: T/2)")
    f.add_argument("--lam", type=float, default=0.5, help="weight of image A (0.5 = average)")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                    console=out)


class _Bar:
    """A progress bar counting network evaluations, showing it/s."""

    def __init__(self, bar: Progress, description: str, total: int):
        self.bar, self.t0, self.done = bar, time.perf_counter(), 0
        self.task = bar.add_task(description, total=total, rate="")

    def set(self, done: int, total: int) -> None:
        """Absolute progress (e.g. images through Inception), with images/s."""
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.task, total=total, completed=done, rate=f"{rate:.1f} img/s")

    def __call__(self, *_: int) -> None:
        self.done += 1
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(self.task, advance=1, rate=f"{rate:.1f} it/s")


def _load(store: Store, args, kinds=None):
    from ..generate.loading import DIFFUSION, load_trained

    return load_trained(store, args.run_id, checkpoint=args.checkpoint, weights=args.weights, device=args.device,
                        kinds=kinds or DIFFUSION)


def _evals(trained, sampler: str, steps: int | None, start: int | None = None) -> int:
    return len(trained.diffusion.timesteps_for(sampler, steps, start))


def _provenance(trained, args, **extra) -> dict:
    return {"checkpoint_step": trained.step, "weights": trained.weights, "seed": args.seed,
            "guidance": args.guidance, **extra}


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated numbers, got {text!r}") from None


def cmd_sample(store: Store, args) -> int:
    from ..generate.loading import GENERATIVE
    from ..trained.sampling import parse_labels, sample, save_sample_set

    run, cfg, trained = _load(store, args, kinds=GENERATIVE)
    labels = parse_labels(args.labels, trained, args.num)
    gan = trained.is_gan
    steps = None if args.sampler == "ddpm" or gan else args.steps
    per_batch = 1 if gan else _evals(trained, args.sampler, steps)
    t0 = time.perf_counter()
    with _progress() as bar:
        tick = _Bar(bar, f"sampling run {run.id}", per_batch * -(-args.num // args.batch))
        images = sample(trained, args.num, batch=args.batch, sampler=args.sampler, steps=steps, eta=args.eta,
                        labels=labels, guidance=args.guidance, seed=args.seed, truncation_psi=args.truncation,
                        progress=tick, precision=args.precision)
    seconds = time.perf_counter() - t0
    name = (f"gan-psi{args.truncation:g}-n{args.num}-step{trained.step}" if gan else
            f"{args.sampler}{'' if steps is None else steps}-eta{args.eta:g}-w{args.guidance:g}-n{args.num}-step{trained.step}"
            + ("" if args.precision == "fp32" else f"-{args.precision}"))
    folder = Path(args.out) if args.out else Path(run.run_dir) / "samples" / name
    save_sample_set(images, folder, args.format)
    sampler_meta = ({"sampler": "gan", "truncation_psi": args.truncation} if gan else
                    {"sampler": args.sampler, "steps": steps or cfg.timesteps, "eta": args.eta,
                     "precision": args.precision})
    meta = _provenance(trained, args, n=args.num, **sampler_meta, labels=args.labels or ("each class" if trained.cond.kind == "class" else None),
                       seconds=round(seconds, 2), images_per_s=round(args.num / seconds, 3), format=args.format)
    store.add_artifact(run.id, "samples", folder, key=name, step=trained.step, meta=meta)
    print(f"wrote {args.num} samples to {folder} ({args.num / seconds:.2f} images/s)")
    return 0


def _save_figure(store: Store, run, trained, args, key: str, tensor, nrow: int, meta: dict) -> Path:
    from ..models.pixels import VALUE_RANGE
    from ..viz.images import save_png

    path = Path(args.out) if args.out else Path(run.run_dir) / "figures" / f"{key}-step{trained.step}.png"
    save_png(tensor, path, nrow=nrow, value_range=VALUE_RANGE)
    store.add_artifact(run.id, "image", path, key=key, step=trained.step, meta=_provenance(trained, args, **meta))
    print(f"wrote {path}")
    return path


def cmd_grid(store: Store, args) -> int:
    from ..generate.figures import class_grid

    run, cfg, trained = _load(store, args)
    if trained.cond.kind != "class":
        raise ValueError(f"run {run.id} is not class-conditional; a class grid needs class labels")
    steps = None if args.sampler == "ddpm" else args.steps
    with _progress() as bar:
        tick = _Bar(bar, "class grid", _evals(trained, args.sampler, steps))
        grid = class_grid(trained, args.columns, sampler=args.sampler, steps=steps, guidance=args.guidance,
                          seed=args.seed, progress=tick)
    _save_figure(store, run, trained, args, "class_grid", grid, args.columns,
                 {"sampler": args.sampler, "steps": steps, "columns": args.columns})
    return 0


def cmd_strip(store: Store, args) -> int:
    import torch

    from ..generate.figures import denoising_strip
    from ..trained.sampling import check_label

    run, cfg, trained = _load(store, args)
    check_label(args.label, trained)
    T = trained.diffusion.T
    ts = [int(v) for v in _floats(args.timesteps, "--timesteps")] if args.timesteps else \
        [round(T - 1 - i * (T - 1) / 7) for i in range(8)]
    outside = [t for t in ts if not 0 <= t < T]
    if outside:
        raise ValueError(f"--timesteps {outside[0]} is outside this run's chain: expected 0..{T - 1}")
    with _progress() as bar:
        tick = _Bar(bar, "denoising chain", T)
        x_t, x0 = denoising_strip(trained, ts, label=args.label, guidance=args.guidance, seed=args.seed, progress=tick)
    _save_figure(store, run, trained, args, "denoising_strip", torch.cat([x_t, x0]), len(x_t),
                 {"timesteps": ts, "rows": "x_t, predicted x_0", "label": args.label})
    return 0


def cmd_eta_grid(store: Store, args) -> int:
    import torch

    from ..generate.figures import eta_grid
    from ..trained.sampling import check_label, noise_file

    run, cfg, trained = _load(store, args)
    check_label(args.label, trained)
    noise, noise_path = noise_file(args.noise, (4, *trained.image_shape), args.seed,
                                   Path(run.run_dir) / "noise" / f"noise-seed{args.seed}.pt")
    etas = _floats(args.etas, "--etas")
    if any(eta < 0 for eta in etas):
        raise ValueError(f"--etas must all be >= 0, got {args.etas}")
    labels = torch.full((len(noise),), args.label) if args.label is not None else None
    with _progress() as bar:
        tick = _Bar(bar, "eta grid", len(etas) * _evals(trained, "ddim", args.steps))
        grid = eta_grid(trained, noise, etas, steps=args.steps, labels=labels, guidance=args.guidance,
                        seed=args.seed, progress=tick)
    _save_figure(store, run, trained, args, "eta_grid", grid, len(noise),
                 {"etas": etas, "steps": args.steps, "noise": str(noise_path)})
    return 0


def cmd_interp(store: Store, args) -> int:
    from ..generate.figures import interpolation
    from ..trained.sampling import check_label, noise_file

    run, cfg, trained = _load(store, args)
    check_label(args.label, trained)
    noise, noise_path = noise_file(args.noise, (2, *trained.image_shape), args.seed,
                                   Path(run.run_dir) / "noise" / f"pair-seed{args.seed}.pt")
    if len(noise) < 2:
        raise ValueError(f"--noise {noise_path} holds {len(noise)} noise; interpolation needs 2")
    alphas = _floats(args.alphas, "--alphas")
    with _progress() as bar:
        tick = _Bar(bar, "interpolation", 2 * _evals(trained, "ddim", args.steps))
        grid = interpolation(trained, noise[:1], noise[1:2], alphas, steps=args.steps, label=args.label,
                             guidance=args.guidance, progress=tick)
    _save_figure(store, run, trained, args, "interpolation", grid, len(alphas),
                 {"alphas": alphas, "rows": "slerp, lerp", "noise": str(noise_path)})
    return 0


def cmd_fuse(store: Store, args) -> int:
    import torch

    from ..data.folder import IMAGE_SUFFIXES, read_image
    from ..generate.figures import fuse
    from ..models.pixels import VALUE_RANGE, to_float
    from ..viz.images import save_png

    if not args.pairs and not (args.a and args.b):
        raise ValueError("fuse needs --a and --b, or --pairs FOLDER")
    run, cfg, trained = _load(store, args)
    args.t = trained.diffusion.T // 2 if args.t is None else args.t
    if not 0 <= args.t < trained.diffusion.T:
        raise ValueError(f"--t must be in 0..{trained.diffusion.T - 1}, got {args.t}")
    if not 0.0 <= args.lam <= 1.0:
        raise ValueError(f"--lam must be between 0 and 1, got {args.lam}")
    if args.pairs:
        if not Path(args.pairs).is_dir():
            raise ValueError(f"--pairs {args.pairs} is not a folder; expected a folder of images")
        files = sorted(p for p in Path(args.pairs).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise ValueError(f"--pairs {args.pairs}: needs at least 2 images, found {len(files)}")
        rng = random.Random(args.seed)
        pairs = [tuple(rng.sample(files, 2)) for _ in range(args.num)]
    else:
        pairs = [(Path(args.a), Path(args.b))]
    c, size, _ = trained.image_shape
    mode = "L" if c == 1 else "RGB"

    def load(p: Path) -> torch.Tensor:
        try:
            return to_float(torch.tensor(read_image(p, size, mode))).unsqueeze(0)
        except Exception as e:
            raise ValueError(f"{p}: not a readable image ({type(e).__name__})") from None

    folder = Path(args.out) if args.out else Path(run.run_dir) / "fusion"
    steps = None if args.sampler == "ddpm" else args.steps
    with _progress() as bar:
        tick = _Bar(bar, f"fusing {len(pairs)} pair(s)", len(pairs) * _evals(trained, args.sampler, steps, args.t))
        for a, b in pairs:
            fused = fuse(trained, load(a), load(b), args.t, args.lam, sampler=args.sampler, steps=steps,
                         seed=args.seed, progress=tick)
            save_png(fused[0], folder / f"{a.stem}_{b.stem}.png", value_range=VALUE_RANGE)
    store.add_artifact(run.id, "samples", folder, key="fusion", step=trained.step,
                       meta=_provenance(trained, args, t=args.t, lam=args.lam, pairs=len(pairs), sampler=args.sampler))
    print(f"wrote {len(pairs)} fusion(s) to {folder}")
    return 0

"""Sampling wall time: DDIM with 50 steps vs the full 1000-step DDPM chain, same model.

    .venv/bin/python bench/ddim_vs_ddpm.py [--run ID --db runs.db] [-n 16]

With --run, the model is that diffusion run's newest checkpoint; without, a fresh UNet of
the same shape as the README's MNIST recipe (timing does not depend on the weights).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuigen.models.diffusion import GaussianDiffusion  # noqa: E402
from tuigen.models.unet import UNet  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=int)
    p.add_argument("--db")
    p.add_argument("-n", type=int, default=16, help="images per chain (one batch)")
    p.add_argument("--ddim_steps", type=int, default=50)
    args = p.parse_args()
    if args.run:
        from tuigen.generate.loading import load_trained
        from tuigen.store import Store

        _, _, trained = load_trained(Store(args.db), args.run)
        model, diffusion, shape = trained.model, trained.diffusion, trained.image_shape
    else:
        model = UNet(28, 1, 32, (1, 2, 4), 1, (7,)).eval()
        diffusion, shape = GaussianDiffusion(1000), (1, 28, 28)
    x_T = torch.randn(args.n, *shape)
    times = {}
    for name, sampler, steps in (("DDIM-%d" % args.ddim_steps, "ddim", args.ddim_steps), ("DDPM-%d" % diffusion.T, "ddpm", None)):
        t0 = time.perf_counter()
        diffusion.sample(model, x_T.clone(), sampler=sampler, steps=steps)
        times[name] = time.perf_counter() - t0
        print(f"{name:>10}: {times[name]:7.2f} s for {args.n} images ({times[name] / args.n:.3f} s/image)")
    ddim, ddpm = times.values()
    print(f"DDPM / DDIM wall time: {ddpm / ddim:.1f}x")


if __name__ == "__main__":
    main()

"""What each training switch does to tuigen's diffusion training step, on this machine.

    .venv/bin/python bench/train_switches.py [--device cpu] [--image_size 16] [--channels 32] [--compile]

One UNet + GaussianDiffusion training step (loss, backward, clip, AdamW step), as
experiments/diffusion_train.py runs it, timed with each switch alone against the baseline
(plain AdamW with its default for-each loop, NCHW, eager): fused AdamW, channels_last, and
with --compile torch.compile (its compile time printed apart). On a GPU also cuDNN benchmark
and TF32, the switches the worker turns on there (trained/device.py `tune_for`). The switches
are timed in alternating blocks so neither gets a warmer machine; the figure is images/s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuigen.models.diffusion import GaussianDiffusion  # noqa: E402
from tuigen.models.unet import UNet  # noqa: E402


def make_step(args, device, *, fused=False, channels_last=False, compiled=False):
    torch.manual_seed(0)
    net = UNet(args.image_size, 1, args.channels, (1, 2, 2), num_res_blocks=1,
               attn_resolutions=(args.image_size // 4,)).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    run = torch.compile(net) if compiled else net
    diffusion = GaussianDiffusion(1000, device=device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, **({"fused": True} if fused else {}))
    x = torch.rand(args.batch, 1, args.image_size, args.image_size, device=device).mul(2).sub(1)
    x = x.contiguous(memory_format=fmt)

    def step():
        loss = diffusion.loss(run, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def timed(step, n: int, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def tuned(on: bool) -> None:
    torch.backends.cudnn.benchmark = on
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image_size", type=int, default=16)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (compiling takes minutes on a CPU)")
    args = p.parse_args()
    device = torch.device(args.device)
    variants = {"baseline": {}, "fused_adamw": {"fused": True}, "channels_last": {"channels_last": True}}
    if args.compile:
        variants["compile"] = {"compiled": True}
    steps = {}
    for name, kw in variants.items():
        steps[name] = make_step(args, device, **kw)
        t0 = time.perf_counter()
        steps[name]()  # warm-up (and compiling)
        if name == "compile":
            print(f"compile: first step (compiling) {time.perf_counter() - t0:.1f} s")
    if device.type == "cuda":
        steps["cudnn_benchmark+tf32"] = make_step(args, device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            tuned(name == "cudnn_benchmark+tf32")  # global switches: on for their own variant only
            times[name].append(timed(step, args.steps, device))
    base = statistics.median(times["baseline"])
    print(f"device {device}, {args.image_size}px, channels {args.channels}, batch {args.batch}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.rounds} blocks of "
          f"{args.steps} steps")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:22s} {args.batch * args.steps / t:8.1f} images/s  {base / t:5.2f}x baseline")


if __name__ == "__main__":
    main()

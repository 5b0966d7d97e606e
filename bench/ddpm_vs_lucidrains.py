"""Diffusion training throughput: tuigen's UNet + GaussianDiffusion vs denoising-diffusion-pytorch.

    .venv/bin/pip install denoising-diffusion-pytorch    # bench-only peer (make bench does this)
    .venv/bin/python bench/ddpm_vs_lucidrains.py [--image_size 28] [--dim 32] [--batch 32] [--device cpu]

Same data (MNIST digits from tuigen's offline copy), same image size, batch, precision,
timesteps (1000, linear, pred_noise) and training step: loss, backward, grad-norm clip at
1.0, Adam step, EMA update every 10 steps. Model sizes are matched by parameter count: the
peer's Unet(dim, dim_mults) first, then the tuigen `channels` whose UNet is closest in
parameters (the narrowest tuigen UNet with at least as many parameters, so tuigen never gets
the smaller model). Both step loops run in this process, alternating in blocks so neither gets a
warmer machine; the figure is images per second of training.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuigen.data import load_dataset  # noqa: E402
from tuigen.models.diffusion import GaussianDiffusion  # noqa: E402
from tuigen.models.ema import EMA  # noqa: E402
from tuigen.models.unet import UNet  # noqa: E402


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def peer_step_fn(dim, mults, size, device, lr):
    from denoising_diffusion_pytorch import GaussianDiffusion as PeerDiffusion
    from denoising_diffusion_pytorch import Unet as PeerUnet
    from ema_pytorch import EMA as PeerEMA

    net = PeerUnet(dim=dim, dim_mults=mults, channels=1, flash_attn=device.type == "cuda").to(device)
    diffusion = PeerDiffusion(net, image_size=size, timesteps=1000, objective="pred_noise",
                              beta_schedule="linear").to(device)
    opt = torch.optim.Adam(diffusion.parameters(), lr=lr)
    ema = PeerEMA(diffusion, beta=0.995, update_every=10).to(device)

    def step(x01):  # the peer normalises [0, 1] images itself
        loss = diffusion(x01)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update()
    return net, step


def our_step_fn(channels, mults, size, device, lr):
    net = UNet(size, 1, channels, mults, num_res_blocks=2, attn_resolutions=(size // 2 ** (len(mults) - 1),)).to(device)
    diffusion = GaussianDiffusion(1000, "linear", "pred_noise", device=device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ema = EMA(net, 0.995, 10)
    counter = [0]

    def step(x01):
        counter[0] += 1
        loss = diffusion.loss(net, x01 * 2 - 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(net, counter[0])
    return net, step


def matched_channels(target: int, mults, size) -> int:
    """The narrowest tuigen UNet with at least the peer's parameter count (never a smaller model)."""
    for c in range(8, 513, 2):
        if n_params(UNet(size, 1, c, mults, 2, (size // 2 ** (len(mults) - 1),))) >= target:
            return c
    raise ValueError("no tuigen width reaches the peer's parameter count")


def timed(step, batches, device, dtype) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x in batches:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            step(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image_size", type=int, default=28)
    p.add_argument("--dim", type=int, default=32, help="the peer's Unet dim (first width)")
    p.add_argument("--dim_mults", default="1,2,4")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--blocks", type=int, default=4, help="alternating timing blocks per model")
    p.add_argument("--steps", type=int, default=5, help="training steps per block")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = p.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    mults = tuple(int(m) for m in args.dim_mults.split(","))
    data = torch.from_numpy(load_dataset("mnist", args.image_size).images).float().div(255).to(device)

    peer_net, peer_step = peer_step_fn(args.dim, mults, args.image_size, device, 1e-4)
    ours_c = matched_channels(n_params(peer_net), mults, args.image_size)
    our_net, our_step = our_step_fn(ours_c, mults, args.image_size, device, 1e-4)
    total = args.blocks * args.steps
    g = torch.Generator().manual_seed(0)
    batches = [data[torch.randint(len(data), (args.batch,), generator=g).to(device)] for _ in range(total + 2)]
    print(f"device {device} ({torch.get_num_threads()} threads), {args.precision}, batch {args.batch}, "
          f"{args.image_size}x{args.image_size}x1 MNIST, dim_mults {mults}")
    print(f"denoising-diffusion-pytorch Unet(dim={args.dim}): {n_params(peer_net):,} parameters")
    print(f"tuigen UNet(channels={ours_c}):                {n_params(our_net):,} parameters")
    for step in (peer_step, our_step):  # warm-up: allocator, kernels
        timed(step, batches[:2], device, dtype)
    t_peer = t_ours = 0.0
    for b in range(args.blocks):
        chunk = batches[2 + b * args.steps: 2 + (b + 1) * args.steps]
        t_peer += timed(peer_step, chunk, device, dtype)
        t_ours += timed(our_step, chunk, device, dtype)
    peer_ips, our_ips = total * args.batch / t_peer, total * args.batch / t_ours
    print(f"denoising-diffusion-pytorch: {peer_ips:8.1f} images/s")
    print(f"tuigen:                      {our_ips:8.1f} images/s")
    print(f"ratio tuigen / peer: {our_ips / peer_ips:.2f}x")


if __name__ == "__main__":
    main()

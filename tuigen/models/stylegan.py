"""A compact style-based generator in the StyleGAN2 spirit (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN"), with a residual discriminator.

Generator (StyleGAN sec. 2, StyleGAN2 sec. 2 and Fig. 7b):
    w = f(z)                         mapping network, 8 FC layers, lr multiplier 0.01
    x = const                        learned 4x4 (7x7 for 28 px) input
    per layer: x = lrelu(modconv(x, A(w_i)) + B * noise + bias)
    img = up(img) + ToRGB(x, A(w))   skip-connection RGB outputs at every resolution
Modulated convolution (StyleGAN2 eq. 1-3): w'_ijk = s_i w_ijk; w''_ijk = w'_ijk / sqrt(sum_ik w'^2 + eps).
Style mixing (StyleGAN sec. 3.1): the layers before a crossover take w from z1, the rest from z2.
Truncation (StyleGAN sec. 3.1 / Appendix B): w' = w_avg + psi (w - w_avg), w_avg tracked in training.

Discriminator (StyleGAN2 Fig. 7c): FromRGB, residual blocks (two 3x3 convs, 1x1 skip,
(main + skip) / sqrt(2)) halving the side down to 4x4, minibatch stddev (ProGAN sec. 3),
a 3x3 conv and two FC layers to one logit.

Simplifications, to stay small: resampling is bilinear up / 2x2 average pooling instead of
the [1,3,3,1] FIR filters; no path-length regularisation; no ADA. Equalised learning rate
(ProGAN sec. 4.1) everywhere: weights are N(0, 1) and scaled by 1/sqrt(fan_in) at run time.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import start_size

SQRT2 = math.sqrt(2)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) with StyleGAN's gain sqrt(2), which keeps activations at unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def channels_at(side: int, image_size: int, width: int) -> int:
    """`width` at full resolution, doubling each time the side halves, at most 8 x width."""
    return min(width * image_size // side, 8 * width)


class EqualLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(in_features), lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True, activation: bool = False,
                 down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale, self.activation, self.down = 1 / math.sqrt(in_ch * kernel * kernel), activation, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        if self.down:
            x = F.avg_pool2d(x, 2)
        return lrelu(x) if self.activation else x


class MappingNetwork(nn.Module):
    """f: Z -> W. z is normalised to unit second moment first (StyleGAN's pixel norm of z)."""

    def __init__(self, z_dim: int = 256, w_dim: int = 256, num_layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True) for a, b in zip(dims, dims[1:])])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """A conv whose weights are scaled per input channel by the style s = A(w), then demodulated."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # "A": styles start at 1
        self.demodulate, self.up = demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, _, _ = x.shape
        s = self.affine(w)                                                  # (N, in)
        weight = self.scale * self.weight[None] * s[:, None, :, None, None]  # eq. 1: w'_ijk = s_i w_ijk
        if self.demodulate:
            sigma_inv = torch.rsqrt(weight.square().sum((2, 3, 4)) + 1e-8)  # eq. 2: sigma_j = sqrt(sum_ik w'^2)
            weight = weight * sigma_inv[:, :, None, None, None]             # eq. 3: w''_ijk = w'_ijk / sigma_j
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        h, w_ = x.shape[2:]
        out_ch, k = weight.shape[1], weight.shape[-1]
        # One grouped conv applies each sample's own weights (StyleGAN2 sec. 2.2).
        out = F.conv2d(x.reshape(1, n * c, h, w_), weight.reshape(n * out_ch, c, k, k).to(x.dtype),
                       padding=k // 2, groups=n)
        return out.reshape(n, out_ch, h, w_)


class NoiseInjection(nn.Module):
    """"B": single-channel per-pixel noise, scaled by a learned per-layer strength (StyleGAN sec. 3.2).

    noise_mode 'random' draws fresh noise, 'const' uses a fixed map stored with the model
    (for repeatable pictures, as StyleGAN2's generate.py), 'none' adds nothing."""

    def __init__(self, side: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const
        else:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.strength * noise.to(x.dtype)


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, w_dim: int, side: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, up=up)
        self.noise = NoiseInjection(side)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """A modulated 1x1 conv to image channels, not demodulated (StyleGAN2 Fig. 7b, tRGB)."""

    def __init__(self, in_ch: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        rgb = self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]
        if skip is not None:  # skip generator: img = up(img) + tRGB(x)
            rgb = rgb + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return rgb


class SynthesisNetwork(nn.Module):
    """g: one w per layer (N, num_ws, w_dim) -> image. Layer i uses ws[:, i]; each resolution's
    ToRGB uses the w after its last conv, so num_ws = number of convs + 1."""

    def __init__(self, image_size: int, channels: int, w_dim: int, width: int):
        super().__init__()
        base, n = start_size(image_size)
        sides = [base * 2 ** i for i in range(n + 1)]
        ch = [channels_at(s, image_size, width) for s in sides]
        self.const = nn.Parameter(torch.randn(1, ch[0], base, base))
        self.convs = nn.ModuleList([StyledConv(ch[0], ch[0], w_dim, base)])
        self.to_rgbs = nn.ModuleList([ToRGB(ch[0], channels, w_dim)])
        for i in range(1, n + 1):
            self.convs.append(StyledConv(ch[i - 1], ch[i], w_dim, sides[i], up=True))
            self.convs.append(StyledConv(ch[i], ch[i], w_dim, sides[i]))
            self.to_rgbs.append(ToRGB(ch[i], channels, w_dim))
        self.num_ws = len(self.convs) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.const.expand(len(ws), -1, -1, -1).to(ws.dtype)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        img = self.to_rgbs[0](x, ws[:, 1])
        for level, to_rgb in enumerate(self.to_rgbs[1:], start=1):
            i = 2 * level - 1
            x = self.convs[i](x, ws[:, i], noise_mode)
            x = self.convs[i + 1](x, ws[:, i + 1], noise_mode)
            img = to_rgb(x, ws[:, i + 2], skip=img)
        return img


def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int) -> torch.Tensor:
    """Layers [0, crossover) from ws1 (coarse styles), [crossover, num_ws) from ws2 (fine)."""
    layer = torch.arange(ws1.shape[1], device=ws1.device)[None, :, None]
    return torch.where(layer < crossover, ws1, ws2)


class Generator(nn.Module):
    """G(z) = g(f(z)), with style mixing and truncation. Output is linear (no Tanh), ~[-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, z_dim: int = 256, w_dim: int = 256,
                 mapping_layers: int = 8, width: int = 32, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_avg_beta = z_dim, w_avg_beta
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.synthesis = SynthesisNetwork(image_size, channels, w_dim, width)
        self.num_ws = self.synthesis.num_ws
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def ws(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z -> one w per layer (N, num_ws, w_dim); tracks w_avg while training."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)  # w' = w_avg + psi (w - w_avg)
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor, z2: torch.Tensor | None = None, crossover: int | None = None,
                truncation_psi: float = 1.0, noise_mode: str = "random") -> torch.Tensor:
        ws = self.ws(z, truncation_psi)
        if z2 is not None and crossover is not None:
            ws = mix_styles(ws, self.ws(z2, truncation_psi), crossover)
        return self.synthesis(ws, noise_mode)


@torch.no_grad()
def mixing_grid(g: Generator, z_rows: torch.Tensor, z_cols: torch.Tensor, crossover: int | None = None,
                truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
    """The style-mixing figure (StyleGAN Fig. 3) as (R+1) x (C+1) images, row by row: a blank
    corner, the column sources along the top, the row sources down the left, and in cell (r, c)
    the coarse styles (layers before `crossover`, default the middle) of row source r with the
    fine styles of column source c."""
    crossover = g.num_ws // 2 if crossover is None else crossover
    ws_r, ws_c = g.ws(z_rows, truncation_psi), g.ws(z_cols, truncation_psi)
    rows, cols = g.synthesis(ws_r, noise_mode), g.synthesis(ws_c, noise_mode)
    blank = torch.ones_like(rows[:1])
    out = [blank, cols]
    for r in range(len(z_rows)):
        mixed = mix_styles(ws_r[r:r + 1].expand(len(z_cols), -1, -1), ws_c, crossover)
        out += [rows[r:r + 1], g.synthesis(mixed, noise_mode)]
    return torch.cat(out)


class MinibatchStdDev(nn.Module):
    """ProGAN sec. 3: the std of each feature over a group of samples, averaged to one number
    per group and appended as an extra channel, so D can see a batch's lack of variety."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(n, self.group_size)
        y = x.float().reshape(g, -1, c, h, w)          # sample i is in group i % (n / g)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt()   # std over the group
        y = y.mean((1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], 1)


class ResBlock(nn.Module):
    """StyleGAN2 Fig. 7c: two 3x3 convs (the second halves the side) plus a 1x1 skip, / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, activation=True)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class Discriminator(nn.Module):
    """D(x): (N, channels, S, S) -> (N,) logits."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 32, mbstd: bool = True):
        super().__init__()
        base, n = start_size(image_size)
        sides = [image_size // 2 ** i for i in range(n + 1)]  # 64 -> 4
        ch = [channels_at(s, image_size, width) for s in sides]
        self.from_rgb = EqualConv2d(channels, ch[0], 1, activation=True)
        self.blocks = nn.Sequential(*[ResBlock(a, b) for a, b in zip(ch, ch[1:])])
        self.mbstd = MinibatchStdDev() if mbstd else None
        self.conv = EqualConv2d(ch[-1] + (1 if mbstd else 0), ch[-1], 3, activation=True)
        self.fc = EqualLinear(ch[-1] * base * base, ch[-1], activation=True)
        self.out = EqualLinear(ch[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))
        if self.mbstd is not None:
            h = self.mbstd(h)
        return self.out(self.fc(self.conv(h).flatten(1))).squeeze(1)

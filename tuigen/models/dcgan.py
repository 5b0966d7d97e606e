"""DCGAN (Radford, Metz & Chintala 2016) in the "4-2-1" style, and its conditional variant.

Generator: z (plus an embedded label) as a 1x1 map -> a transposed conv to the start size ->
transposed convs with 4x4 kernels, stride 2, padding 1, each doubling the side, with
BatchNorm + ReLU -> Tanh (paper sec. 3: no BatchNorm on G's output layer).
Discriminator: the mirror image, strided 4x4 convs with BatchNorm + LeakyReLU(0.2) (no
BatchNorm on D's input layer) down to the start size, then one conv to a single number.

The paper's D ends in a Sigmoid; ours returns the logit and the losses use BCE-with-logits
(softplus), which is the same objective computed without log(sigmoid) underflowing.

Sizes: 8 x 2^k starts from 4x4 (64 = 4 -> 8 -> 16 -> 32 -> 64); 28 starts from 7x7
(7 -> 14 -> 28), as the MNIST DCGANs do, so no padding or resizing is needed.

Conditional GAN (Mirza & Osindero 2014): the label (class index or multi-hot vector) is
embedded and concatenated with z in G; D gets it either as an extra input channel
(`concat`) or through a projection (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <V y, phi(x)>.
"""
from __future__ import annotations

import torch
from torch import nn

D_COND = ("concat", "projection")
MAX_MULT = 8  # channel multiplier cap: 64-wide DCGAN has 512 channels at 4x4


def start_size(image_size: int) -> tuple[int, int]:
    """(start side, number of doublings): 8 x 2^k -> (4, k + 1); 28 -> (7, 2)."""
    base = 7 if image_size == 28 else 4
    n, side = 0, base
    while side < image_size:
        side, n = side * 2, n + 1
    if side != image_size or n < 1:
        raise ValueError(f"image_size must be 8 x 2^k (8, 16, 32, 64, ...) or 28, got {image_size}")
    return base, n


def init_weights(module: nn.Module) -> None:
    """DCGAN sec. 4: all weights from N(0, 0.02); BatchNorm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class LabelEmbedding(nn.Module):
    """A class index (a lookup table) or a multi-hot vector (a linear map) -> a vector of `dim`."""

    def __init__(self, kind: str, size: int, dim: int):
        super().__init__()
        if kind not in ("class", "multi"):
            raise ValueError(f"label kind must be 'class' or 'multi', got {kind!r}")
        self.kind = kind
        self.table = nn.Embedding(size, dim) if kind == "class" else nn.Linear(size, dim, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.table(y.long() if self.kind == "class" else y.float())


def _mult(i: int) -> int:
    return min(2 ** i, MAX_MULT)


class Generator(nn.Module):
    """G(z, y): (N, latent_dim) [+ labels] -> (N, channels, S, S) in [-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64,
                 cond_kind: str = "none", cond_size: int = 0, embed_dim: int = 64):
        super().__init__()
        base, n = start_size(image_size)
        self.latent_dim = latent_dim
        self.embed = LabelEmbedding(cond_kind, cond_size, embed_dim) if cond_kind != "none" else None
        in_dim = latent_dim + (embed_dim if self.embed is not None else 0)
        widths = [width * _mult(n - 1 - i) for i in range(n)]  # 64 px: 512, 256, 128, 64
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, widths[0], base, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass labels y")
            z = torch.cat([z, self.embed(y).to(z.dtype)], 1)  # cGAN: [z, embed(y)]
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """D(x, y): (N, channels, S, S) [+ labels] -> (N,) logits (the Sigmoid is in the loss)."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, cond_kind: str = "none",
                 cond_size: int = 0, d_cond: str = "concat"):
        super().__init__()
        if d_cond not in D_COND:
            raise ValueError(f"d_cond must be one of {', '.join(D_COND)}, got {d_cond!r}")
        base, n = start_size(image_size)
        self.image_size = image_size
        self.d_cond = d_cond if cond_kind != "none" else "none"
        widths = [width * _mult(i) for i in range(n)]  # 64 px: 64, 128, 256, 512
        extra = 1 if self.d_cond == "concat" else 0
        layers: list[nn.Module] = [nn.Conv2d(channels + extra, widths[0], 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)  # phi(x): (N, widths[-1], base, base)
        self.out = nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False)  # psi
        if self.d_cond == "concat":  # the label as one more image channel
            self.label_map = LabelEmbedding(cond_kind, cond_size, image_size * image_size)
        elif self.d_cond == "projection":  # V in <V y, phi(x)>
            self.label_proj = LabelEmbedding(cond_kind, cond_size, widths[-1])
        self.apply(init_weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.d_cond != "none" and y is None:
            raise ValueError("this discriminator is conditional: pass labels y")
        if self.d_cond == "concat":
            s = self.image_size
            x = torch.cat([x, self.label_map(y).to(x.dtype).view(-1, 1, s, s)], 1)
        h = self.features(x)
        logit = self.out(h).flatten(1).sum(1)
        if self.d_cond == "projection":  # Miyato & Koyama 2018, eq. 3
            logit = logit + (self.label_proj(y).to(h.dtype) * h.sum((2, 3))).sum(1)
        return logit

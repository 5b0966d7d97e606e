"""The DDPM noise-prediction network eps_theta(x_t, t[, y]): a UNet.

Follows Ho et al. 2020 (appendix B) with the multi-head attention of improved DDPM
(Nichol & Dhariwal 2021):

    x_t -> conv_in -> [down level: num_res_blocks x ResBlock (+attention), downsample]
        -> middle: ResBlock, self-attention, ResBlock
        -> [up level: (num_res_blocks + 1) x ResBlock on concat(h, skip) (+attention), upsample]
        -> GroupNorm, SiLU, conv_out (zero-initialised)

Level i works at side `image_size / 2**i` with `channels * dim_mults[i]` feature maps. The
timestep t enters through a sinusoidal embedding and an MLP; optional labels y (a class index,
or a multi-hot vector) are embedded and added to it, with a learned "no label" input for
classifier-free guidance. Each ResBlock adds a projection of that embedding to its feature maps
after its first convolution (DDPM's additive conditioning, cheaper than scale-shift).

The forward pass is plain tensor code: no einops, no Python work per pixel or per head, and
attention through `F.scaled_dot_product_attention` so GPUs get the fused kernel. It runs under
`torch.autocast` and with `memory_format=torch.channels_last` inputs and weights.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(c: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with `groups` groups, or gcd(groups, c) when c does not divide by it.

    GroupNorm needs c % groups == 0. Widths like 12, or a concatenation of two levels, need not
    divide by 8; gcd is the largest count <= groups that works for both, so the normalisation
    stays as close as possible to what was asked (falling to 1 group, LayerNorm-like, at worst)
    instead of refusing a model the researcher configured on purpose.
    """
    return nn.GroupNorm(math.gcd(groups, c), c)


class TimestepEmbedding(nn.Module):
    """Transformer sinusoids of t (as a float), then Linear -> SiLU -> Linear to `emb_dim`."""

    def __init__(self, dim: int, emb_dim: int):
        super().__init__()
        half = max(dim // 2, 1)
        # Frequencies 1 / 10000^(i/half), computed once; not persistent, so state_dicts hold
        # only learned weights and the buffer still follows .to(device).
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / half), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * half, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor, dtype: torch.dtype) -> Tensor:
        # float32 on purpose: t up to 1000+ times a frequency loses its phase in half precision.
        args = t.float()[:, None] * self.freqs.float()[None, :]
        return self.mlp(torch.cat([args.sin(), args.cos()], dim=1).to(dtype))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, with a residual.

    Tokens are the channel vectors at each position. For a channels_last input the permute to
    (N, H*W, C) is free; the fused attention kernels read q, k, v as strided views of one qkv
    projection, so nothing is copied per head.
    """

    def __init__(self, c: int, heads: int, groups: int):
        super().__init__()
        self.heads = math.gcd(heads, c)  # heads must divide c; fall back like group_norm
        self.norm = group_norm(c, groups)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c)
        q, k, v = self.qkv(tokens).view(n, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, h*w, c/heads)
        out = self.proj(out.transpose(1, 2).reshape(n, h * w, c))
        return x + out.view(n, h, w, c).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, + projected embedding, GroupNorm-SiLU-dropout-conv3x3, + skip.

    The skip is a 1x1 conv when the width changes. With `attn_heads` > 0 a SelfAttention follows
    (DDPM puts it after the residual block at the chosen resolutions).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int, attn_heads: int = 0):
        super().__init__()
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, c_out)
        self.norm2 = group_norm(c_out, groups)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None
        self.attn = SelfAttention(c_out, attn_heads, groups) if attn_heads > 0 else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """`emb` is SiLU(time + label embedding), computed once by the UNet for every block."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(emb)[:, :, None, None]
        h = F.silu(self.norm2(h))
        if self.dropout is not None:
            h = self.dropout(h)
        h = self.conv2(h) + (x if self.skip is None else self.skip(x))
        return h if self.attn is None else self.attn(h)


class Downsample(nn.Module):
    """Halve the side with a stride-2 conv3x3 (DDPM), keeping the width."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the side: nearest-neighbour x2 then conv3x3 (avoids transposed-conv checkerboards)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownLevel(nn.Module):
    """One resolution on the way down; pushes every block's output onto `skips`."""

    def __init__(self, blocks: list[ResBlock], downsample: Downsample | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, h: Tensor, emb: Tensor, skips: list[Tensor]) -> Tensor:
        for block in self.blocks:
            h = block(h, emb)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h)
            skips.append(h)
        return h


class UpLevel(nn.Module):
    """One resolution on the way up; each block eats the newest skip, concatenated on channels."""

    def __init__(self, blocks: list[ResBlock], upsample: Upsample | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.upsample = upsample

    def forward(self, h: Tensor, emb: Tensor, skips: list[Tensor]) -> Tensor:
        for block in self.blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return h if self.upsample is None else self.upsample(h)


class MidBlock(nn.Module):
    """ResBlock, self-attention, ResBlock at the lowest resolution."""

    def __init__(self, c: int, emb_dim: int, dropout: float, groups: int, attn_heads: int):
        super().__init__()
        self.block1 = ResBlock(c, c, emb_dim, dropout, groups, attn_heads)
        self.block2 = ResBlock(c, c, emb_dim, dropout, groups)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return self.block2(self.block1(h, emb), emb)


def _check_args(image_size, in_channels, channels, dim_mults, num_res_blocks, attn_resolutions, dropout,
                num_classes, cond_dim, groups, out_channels, attn_heads) -> None:
    """Raise ValueError naming the argument, the value and what was expected."""
    def positive(name, value):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    for name, value in [("image_size", image_size), ("in_channels", in_channels), ("channels", channels),
                        ("num_res_blocks", num_res_blocks), ("groups", groups), ("attn_heads", attn_heads)]:
        positive(name, value)
    if out_channels is not None:
        positive("out_channels", out_channels)
    if not dim_mults:
        raise ValueError("dim_mults must name at least one level, got ()")
    for m in dim_mults:
        positive(f"dim_mults {tuple(dim_mults)}: each multiplier", m)
    for r in attn_resolutions:
        positive(f"attn_resolutions {tuple(attn_resolutions)}: each resolution", r)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if num_classes < 0 or cond_dim < 0:
        raise ValueError(f"num_classes and cond_dim must be >= 0, got {num_classes} and {cond_dim}")
    if num_classes > 0 and cond_dim > 0:
        raise ValueError(f"use one kind of conditioning: num_classes={num_classes} (class index) or "
                         f"cond_dim={cond_dim} (multi-hot vector), not both")
    halvings = len(dim_mults) - 1
    if image_size % 2 ** halvings:
        mults = ",".join(map(str, dim_mults))
        raise ValueError(f"image_size {image_size} does not divide by 2^{halvings} = {2 ** halvings} "
                         f"(dim_mults ({mults}) halves the image {halvings} times); use an image_size "
                         f"that is a multiple of {2 ** halvings} or fewer dim_mults")


class UNet(nn.Module):
    """eps_theta(x_t, t, cond): predicts a tensor shaped like x_t (noise, x0 or v).

    Args:
        image_size: side of the (square) training images; must divide by 2**(len(dim_mults)-1).
        in_channels: image channels (1 or 3).
        channels: width of the first level; level i has channels * dim_mults[i].
        dim_mults: width multiplier per level; one downsample between consecutive levels.
        num_res_blocks: ResBlocks per level on the way down (one more on the way up, for the
            extra skip that each downsample leaves, as in DDPM).
        attn_resolutions: feature-map sides whose blocks get self-attention (16 = at 16x16).
            Sides that no level has are ignored. The middle block attends too, unless this is
            empty: () gives a purely convolutional network.
        dropout: in every ResBlock, before its second conv.
        num_classes: > 0 for class conditioning; cond is a LongTensor (N,) and the value
            num_classes means "no label".
        cond_dim: > 0 for multi-hot conditioning; cond is (N, cond_dim) and an all-zero row means
            "no label" (every real scene has at least one label).
        groups: GroupNorm groups (gcd(groups, width) where a width does not divide by it).
        out_channels: output channels, default in_channels.
        attn_heads: heads of each self-attention (gcd(attn_heads, width) if it does not divide).
    """

    def __init__(self, image_size: int, in_channels: int = 3, channels: int = 64,
                 dim_mults: tuple[int, ...] = (1, 2, 4, 8), num_res_blocks: int = 2,
                 attn_resolutions: tuple[int, ...] = (16,), dropout: float = 0.0,
                 num_classes: int = 0, cond_dim: int = 0, groups: int = 8, out_channels: int | None = None,
                 attn_heads: int = 4):
        super().__init__()
        dim_mults, attn_resolutions = tuple(dim_mults), tuple(attn_resolutions)
        _check_args(image_size, in_channels, channels, dim_mults, num_res_blocks, attn_resolutions, dropout,
                    num_classes, cond_dim, groups, out_channels, attn_heads)
        self.image_size, self.in_channels = image_size, in_channels
        self.out_channels = out_channels or in_channels
        self.num_classes, self.cond_dim = num_classes, cond_dim
        self.factor = 2 ** (len(dim_mults) - 1)  # input sides must divide by this
        emb_dim = 4 * channels

        self.time_embed = TimestepEmbedding(channels, emb_dim)
        if num_classes > 0:
            # Row num_classes is the learned "no label" embedding of classifier-free guidance.
            self.cond_embed: nn.Module | None = nn.Embedding(num_classes + 1, emb_dim)
        elif cond_dim > 0:
            # A small MLP rather than one Linear, so labels can interact ("red" with "cube");
            # the zero row maps to a learned constant, the null embedding.
            self.cond_embed = nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        else:
            self.cond_embed = None

        def heads_at(side: int) -> int:
            return attn_heads if side in attn_resolutions else 0

        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        widths = [channels * m for m in dim_mults]
        skip_widths, c, side = [channels], channels, image_size
        down = []
        for i, width in enumerate(widths):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(c, width, emb_dim, dropout, groups, heads_at(side)))
                c = width
                skip_widths.append(c)
            last = i == len(widths) - 1
            down.append(DownLevel(blocks, None if last else Downsample(c)))
            if not last:
                skip_widths.append(c)
                side //= 2
        self.down = nn.ModuleList(down)

        self.mid = MidBlock(c, emb_dim, dropout, groups, attn_heads if attn_resolutions else 0)

        up = []
        for i, width in reversed(list(enumerate(widths))):
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResBlock(c + skip_widths.pop(), width, emb_dim, dropout, groups, heads_at(side)))
                c = width
            up.append(UpLevel(blocks, Upsample(c) if i > 0 else None))
            side *= 2
        self.up = nn.ModuleList(up)

        self.norm_out = group_norm(c, groups)
        self.conv_out = nn.Conv2d(c, self.out_channels, 3, padding=1)
        # Zero init: the untrained model predicts 0 (the mean of the noise), so the first loss is
        # ~1 per pixel instead of a random large value, and early steps are stable.
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def null_cond(self, n: int, device=None) -> Tensor | None:
        """The "no label" conditioning for n samples; None for an unconditional model."""
        if self.num_classes > 0:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        if self.cond_dim > 0:
            return torch.zeros(n, self.cond_dim, device=device)
        return None

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """x: (N, C, H, W) noisy images; t: (N,) or scalar timesteps (integer or float);
        cond: labels as described in the class docstring, or None (no label)."""
        n, _, height, width = x.shape
        if height % self.factor or width % self.factor:
            raise ValueError(f"input side {height}x{width} does not divide by {self.factor} "
                             f"(the UNet halves the image {self.factor.bit_length() - 1} times)")
        if not isinstance(t, Tensor):
            t = torch.tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(n)
        emb = self.time_embed(t, x.dtype)
        if self.cond_embed is not None:
            emb = emb + self._embed_cond(cond, n, x)
        elif cond is not None:
            raise ValueError("cond given to an unconditional UNet (num_classes=0, cond_dim=0)")
        emb = F.silu(emb)  # every ResBlock's projection starts with SiLU: do it once here

        h = self.conv_in(x)
        skips = [h]
        for level in self.down:
            h = level(h, emb, skips)
        h = self.mid(h, emb)
        for level in self.up:
            h = level(h, emb, skips)
        return self.conv_out(F.silu(self.norm_out(h)))

    def _embed_cond(self, cond: Tensor | None, n: int, x: Tensor) -> Tensor:
        if cond is None:
            cond = self.null_cond(n, x.device)
        if self.num_classes > 0:
            if cond.shape != (n,):
                raise ValueError(f"class cond must have shape ({n},), got {tuple(cond.shape)}")
            return self.cond_embed(cond)
        if cond.shape != (n, self.cond_dim):
            raise ValueError(f"multi-hot cond must have shape ({n}, {self.cond_dim}), got {tuple(cond.shape)}")
        return self.cond_embed(cond.to(x.dtype))  # bool or integer multi-hot rows are fine too

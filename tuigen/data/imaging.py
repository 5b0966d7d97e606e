"""PIL-based conversions between (C, H, W) uint8 arrays and images: resizing and channel changes."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .core import Progress, throttled


def to_pil(image: np.ndarray) -> Image.Image:
    """A (1|3, H, W) uint8 array as a PIL image in mode "L" or "RGB"."""
    if image.shape[0] == 1:
        return Image.fromarray(image[0])
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))


def from_pil(image: Image.Image) -> np.ndarray:
    """A PIL "L" or "RGB" image as a (1|3, H, W) uint8 array."""
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def resample_for(src_size: int, dst_size: int) -> Image.Resampling:
    # LANCZOS antialiases when shrinking; BICUBIC rings less than LANCZOS when enlarging.
    return Image.Resampling.LANCZOS if dst_size < src_size else Image.Resampling.BICUBIC


def square_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` and centre-crop to size x size, in one resample.

    Resampling straight from the centred source square (``box``) equals resize-then-crop
    but avoids a second rounding step and an intermediate image.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize((size, size), resample_for(side, size), box=(left, top, left + side, top + side),
                        reducing_gap=3.0)  # box-reduce first for big photos: much faster, same look


def grey_to_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


def adapt(images: np.ndarray, size: int, channels: int, progress: Progress | None = None) -> np.ndarray:
    """Resize (N, C, H, W) uint8 images to ``size`` and convert them to ``channels`` (1 or 3)."""
    n, c, h, _ = images.shape
    if h == size and c == channels:
        return images
    if h == size and c == 1:
        return grey_to_rgb(images)  # pure replication needs no per-image PIL work
    out_c = 1 if channels == 1 else c  # grey->RGB replication happens after resizing (3x cheaper)
    out = np.empty((n, out_c, size, size), dtype=np.uint8)
    tick = throttled(progress, n)
    for i in range(n):
        image = to_pil(images[i])
        if channels == 1 and c == 3:
            image = image.convert("L")  # ITU-R 601 luma, the conversion users expect from PIL
        if h != size:
            image = image.resize((size, size), resample_for(h, size))
        out[i] = from_pil(image)
        tick(i + 1)
    return grey_to_rgb(out) if channels == 3 else out

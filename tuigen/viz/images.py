"""Turn what a training loop holds (torch tensors, numpy arrays, PIL images) into PNG files.
Float pixels carry no range of their own, so every caller states it (`value_range`, e.g. the
models' (-1, 1)); nothing is guessed from the values. Torch is never imported here: tensors
are read by duck typing, so `tuigen.init` users without torch can log numpy images too."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..files import atomic_write


def _as_numpy(img: Any) -> np.ndarray:
    if isinstance(img, Image.Image):
        a = np.asarray(img)
        return a[..., None] if a.ndim == 2 else a  # H,W,C
    if hasattr(img, "detach"):  # a torch tensor, channels first
        img = img.detach().cpu()
        img = (img if str(img.dtype) == "torch.uint8" else img.float()).numpy()  # uint8 stays uint8
        if img.ndim == 3:
            img = img.transpose(1, 2, 0)
        elif img.ndim == 4:
            img = img.transpose(0, 2, 3, 1)
    return np.asarray(img)


def to_uint8(img: Any, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """H,W,C (or N,H,W,C) uint8. uint8 input is kept as it is; any other dtype needs
    `value_range` = (black, white), mapped linearly onto 0..255 and clipped."""
    a = _as_numpy(img)
    if a.dtype == np.uint8:
        return a
    if value_range is None:
        raise ValueError(f"{a.dtype} pixels need a value_range, e.g. (0, 1) or (-1, 1); "
                         "it is never guessed from the values")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    a = (a.astype(np.float32) - low) / (high - low)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def image_grid(images: Any, nrow: int | None = None, pad: int = 2,
               value_range: tuple[float, float] | None = None) -> np.ndarray:
    """N images (N,H,W,C / N,C,H,W tensor) tiled into one H',W',C array, nrow per row."""
    a = to_uint8(images, value_range)
    if a.ndim == 3:
        return a
    n, h, w, c = a.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = a[i]
    return grid


def save_png(img: Any, path: str | Path, nrow: int | None = None,
             value_range: tuple[float, float] | None = None) -> Path:
    """Write one image or a grid of a batch atomically (a viewer never reads half a file);
    float pixels need their `value_range` (see `to_uint8`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = image_grid(img, nrow=nrow, value_range=value_range)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    with atomic_write(path) as f:
        Image.fromarray(a).save(f, format="PNG")
    return path


class UnreadableImage(OSError):
    """An image file that is missing, truncated or not an image; the message says which."""


def read_image(path: str | Path) -> Image.Image:
    """Decode every pixel now, so a damaged file fails here with a clear reason, not later
    inside whatever draws it."""
    try:
        with Image.open(path) as im:
            return im.copy()
    except FileNotFoundError:
        raise UnreadableImage("missing image file") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise UnreadableImage(f"unreadable image ({e})") from e


def image_problem(path: str | Path) -> str | None:
    """Why the image at `path` cannot be shown, or None if it can."""
    try:
        read_image(path)
    except UnreadableImage as e:
        return str(e)
    return None

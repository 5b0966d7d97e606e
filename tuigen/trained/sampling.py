"""Drawing images from a trained model (diffusion or GAN), in batches, and saving sample sets."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..models.pixels import VALUE_RANGE
from ..viz.images import save_png, to_uint8


def parse_labels(text: str | None, trained, n: int) -> torch.Tensor | None:
    """Labels for n samples. Class runs: '3' or '0,1,2' (cycled), default each class in turn.
    Multi-hot runs: 'test' / 'new_test' (the fixed shapes label sets), default 'test'."""
    cond = trained.cond
    if cond.kind == "none":
        if text:
            raise ValueError("--labels given, but this run is unconditional")
        return None
    if cond.kind == "multi":
        from ..data import shapes_test_labels

        sets = {"test", "new_test"}
        which = text or "test"
        if which not in sets:
            raise ValueError(f"--labels for a multi-hot run must be test or new_test, got {which!r}")
        labels = torch.from_numpy(shapes_test_labels(which))
        return labels[torch.arange(n) % len(labels)]
    if text:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--labels expects class numbers like 0,1,2, got {text!r}") from None
        bad = [v for v in values if not 0 <= v < cond.size]
        if bad:
            raise ValueError(f"--labels {bad[0]} is not a class of this run (0..{cond.size - 1})")
    else:
        values = list(range(cond.size))
    return torch.tensor(values)[torch.arange(n) % len(values)]


def check_label(label: int | None, trained) -> None:
    """A figure's single --label: a class of this run, and only for class-conditional runs."""
    cond = trained.cond
    if label is None:
        return
    if cond.kind != "class":
        raise ValueError(f"--label {label} given, but this run is {'unconditional' if cond.kind == 'none' else 'multi-hot'}; "
                         "--label takes a class of a class-conditional run")
    if not 0 <= label < cond.size:
        raise ValueError(f"--label {label} is not a class of this run (0..{cond.size - 1})")


AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@torch.no_grad()
def sample(trained, n: int, *, batch: int = 64, sampler: str = "ddim", steps: int | None = 50, eta: float = 0.0,
           labels: torch.Tensor | None = None, guidance: float = 0.0, seed: int = 0,
           noise: torch.Tensor | None = None, truncation_psi: float = 1.0,
           progress: Callable[[int], None] | None = None, precision: str = "fp32") -> np.ndarray:
    """n images as uint8 (N, H, W, C). `progress(k)` is told of each network evaluation step.
    GAN runs ignore the sampler settings; `truncation_psi` is for style-based GANs. The
    diffusion network runs under autocast in `precision` bf16 or fp16 (fp32, the default, is
    what scores are computed with); the sampler's update arithmetic stays fp32."""
    if trained.is_gan:  # one forward pass per batch
        out = []
        for start in range(0, n, batch):
            m = min(batch, n - start)
            y = labels[start:start + m] if labels is not None else None
            out.append(to_uint8(trained.generate(m, labels=y, seed=seed, first=start, truncation_psi=truncation_psi),
                                VALUE_RANGE))
            if progress:
                progress(1)
        return np.concatenate(out)
    dev = trained.device
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        x_T = noise[start:start + m].to(dev) if noise is not None else torch.randn((m, *trained.image_shape), generator=gen).to(dev)
        y = labels[start:start + m].to(dev) if labels is not None else None
        with torch.autocast(dev.type, dtype=AUTOCAST[precision] or torch.float32, enabled=precision != "fp32"):
            images, _ = trained.diffusion.sample(
                trained.model, x_T, sampler=sampler, steps=steps, eta=eta, cond=y,
                null_cond=trained.null(m, dev) if y is not None else None, guidance=guidance, generator=gen,
                progress=(lambda i, total: progress(1)) if progress else None)
        out.append(to_uint8(images.cpu(), VALUE_RANGE))
    return np.concatenate(out)


def save_sample_set(images: np.ndarray, out_dir: Path, fmt: str) -> list[Path]:
    """A folder of PNGs and/or one samples.npz of uint8 (N, H, W, C)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt in ("npz", "both"):
        path = out_dir / "samples.npz"
        np.savez(path, images=images)
        written.append(path)
    if fmt in ("png", "both"):
        for i, img in enumerate(images):
            save_png(img, out_dir / f"{i:05d}.png")
        written.append(out_dir)
    return written


def noise_file(path: str | None, shape: Sequence[int], seed: int, default_path: Path) -> tuple[torch.Tensor, Path]:
    """Fixed noises: loaded from a .pt file, or drawn with `seed` and saved for reuse."""
    if path:
        if not Path(path).is_file():
            raise ValueError(f"--noise {path}: no such file; expected a .pt tensor of noises")
        try:
            t = torch.load(path, weights_only=True)
        except Exception as e:  # a foreign or damaged file: name it, no unpickling traceback
            raise ValueError(f"--noise {path}: not a saved tensor ({type(e).__name__})") from None
        if not isinstance(t, torch.Tensor) or tuple(t.shape[1:]) != tuple(shape[1:]):
            raise ValueError(f"--noise {path}: expected a tensor of shape (N, {', '.join(map(str, shape[1:]))}), "
                             f"got {getattr(t, 'shape', type(t).__name__)}")
        return t.float(), Path(path)
    t = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))
    default_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(t, default_path)
    return t, default_path

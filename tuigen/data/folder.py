"""``folder:PATH`` datasets: any tree of image files, optionally one subfolder per class.

Layout rules: if any top-level subfolder contains images (at any depth), each such
subfolder is a class (sorted by name) and loose top-level files are ignored;
otherwise the top-level images form an unlabelled dataset.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .catalog import FOLDER_PREFIX, DatasetError
from .core import ImageDataset, Progress, throttled
from .imaging import from_pil, square_crop_resize

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_SIZE = 64


@dataclass
class FolderScan:
    files: list[Path]
    labels: list[int] | None  # per file, or None when there are no class subfolders
    class_names: list[str]

    def fingerprint(self) -> str:
        """Cheap change detector for the cache key: file count, newest mtime and the file list.

        The list is hashed too because moving a file between class folders changes
        neither the count nor any mtime, yet changes the labels.
        """
        newest = max((f.stat().st_mtime_ns for f in self.files), default=0)
        names = hashlib.sha256("\n".join(map(str, self.files)).encode()).hexdigest()[:16]
        return f"{len(self.files)}:{newest}:{names}"


def _is_image(entry: os.DirEntry) -> bool:
    return entry.is_file() and not entry.name.startswith(".") and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES


def _images_in(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if _is_image(e))


def _images_under(folder: Path) -> list[Path]:
    """Images anywhere below ``folder``, in a stable order; hidden folders are skipped."""
    found: list[Path] = []
    for root, dirs, _files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # sorted in place: os.walk order is stable
        found.extend(_images_in(Path(root)))
    return found


def scan_folder(root: Path) -> FolderScan:
    with os.scandir(root) as entries:
        subdirs = sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))
    classes = [(d.name, files) for d in subdirs if (files := _images_under(d))]
    if not classes:
        return FolderScan(_images_in(root), None, [])
    files = [f for _, class_files in classes for f in class_files]
    labels = [k for k, (_, class_files) in enumerate(classes) for _ in class_files]
    return FolderScan(files, labels, [name for name, _ in classes])


def _flatten(image: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL mode to "L"/"RGB": transparency over white, high bit depths rescaled."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # PIL's own conversion clips 16-bit/float values at 255; stretch the range instead.
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        image = Image.fromarray(np.round(np.clip(array, 0, None) / peak * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert(mode)


def read_image(path: Path, size: int, mode: str) -> np.ndarray:
    """One file as a (C, size, size) uint8 array; raises whatever PIL raises on a bad file."""
    with Image.open(path) as image:
        image.draft(mode, (size, size))  # JPEG only: decode at reduced scale, much faster for photos
        return from_pil(square_crop_resize(_flatten(image, mode), size))


def load_folder(spec: str, root: Path, size: int | None, channels: int | None,
                scan: FolderScan, progress: Progress | None = None) -> ImageDataset:
    """Decode every scanned file; unreadable ones are skipped and counted, never fatal."""
    size = size or DEFAULT_SIZE
    mode = "L" if channels == 1 else "RGB"
    if not scan.files:
        raise DatasetError(f"{FOLDER_PREFIX}{root} contains no image files "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = np.empty((len(scan.files), 1 if mode == "L" else 3, size, size), dtype=np.uint8)
    kept: list[int] = []
    tick = throttled(progress, len(scan.files))
    for i, path in enumerate(scan.files):
        try:
            images[len(kept)] = read_image(path, size, mode)
            kept.append(i)
        except Exception:  # noqa: BLE001 - PIL raises many types on corrupt files; one must not abort a load
            pass
        tick(i + 1)
    if not kept:
        raise DatasetError(f"{FOLDER_PREFIX}{root} has no readable images ({len(scan.files)} files failed to decode)")
    labels = None if scan.labels is None else np.asarray(scan.labels, dtype=np.int64)[kept]
    kind = "none" if labels is None else "class"
    return ImageDataset(spec, images[:len(kept)], labels, kind, list(scan.class_names),
                        skipped=len(scan.files) - len(kept))

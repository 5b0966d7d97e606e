"""``folder:PATH`` datasets and `tuigen fid DIR`: the one reader of image folders.

Layout rules: if any top-level subfolder contains images (at any depth), each such
subfolder is a class (sorted by name) and loose top-level images are skipped (named as
such); otherwise the top-level images form an unlabelled dataset. Training and FID scan a
folder the same way, decode every file the same way (`open_image`) and skip the same files,
each named with its reason.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .catalog import FOLDER_PREFIX, IMAGE_SUFFIXES, DatasetError, is_image_name
from .core import ImageDataset, Progress, throttled
from .imaging import from_pil, square_crop_resize

DEFAULT_SIZE = 64
HASH_BUDGET = 256 * 2**20  # folders up to this many bytes are fingerprinted by their bytes
SHOWN_SKIPPED = 20  # files named one by one where skipped files are reported; the rest are counted


@dataclass
class FolderScan:
    root: Path
    files: list[Path]
    labels: list[int] | None  # per file, or None when there are no class subfolders
    class_names: list[str]
    loose: list[Path] = field(default_factory=list)  # top-level images beside class folders: not read

    def fingerprint(self, hash_budget: int = HASH_BUDGET) -> str:
        """The folder's content identity: every file's relative name and size, and its bytes
        (blake2b) when the folder holds at most `hash_budget` bytes, else its modification time.
        Relative names carry the labels (a file moved between class folders changes it); the
        path of the folder itself is left out, so a copy is the same reference."""
        stats = [f.stat() for f in self.files]
        hashed = sum(st.st_size for st in stats) <= hash_budget
        digest = hashlib.blake2b(digest_size=16)
        for f, st in zip(self.files, stats):
            digest.update(f"{f.relative_to(self.root).as_posix()}\0{st.st_size}\0".encode("utf-8", "surrogateescape"))
            if hashed:
                digest.update(f.read_bytes())
            else:
                digest.update(str(st.st_mtime_ns).encode())
        return f"{'bytes' if hashed else 'stat'}-{digest.hexdigest()}"


def _images_in(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_file() and is_image_name(e.name))


def _images_under(folder: Path) -> list[Path]:
    """Images anywhere below ``folder``, in a stable order; hidden folders are skipped."""
    found: list[Path] = []
    for root, dirs, _files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # sorted in place: os.walk order is stable
        found.extend(_images_in(Path(root)))
    return found


def scan_folder(root: Path) -> FolderScan:
    root = Path(root)
    with os.scandir(root) as entries:
        subdirs = sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))
    classes = [(d.name, files) for d in subdirs if (files := _images_under(d))]
    if not classes:
        return FolderScan(root, _images_in(root), None, [])
    files = [f for _, class_files in classes for f in class_files]
    labels = [k for k, (_, class_files) in enumerate(classes) for _ in class_files]
    return FolderScan(root, files, labels, [name for name, _ in classes], loose=_images_in(root))


# -- decoding ---------------------------------------------------------------------------------
class UnreadableFile(OSError):
    """A file that looks like an image by its name but cannot be decoded; the message says why."""


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


def _reason(path: Path, error: Exception) -> str:
    try:
        if path.stat().st_size == 0:
            return "empty file"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if isinstance(error, UnidentifiedImageError):
        return "not an image (no format PIL knows)"
    return f"damaged ({error})"


def open_image(path: Path, mode: str, draft_size: int | None = None) -> Image.Image:
    """The file decoded in full and flattened to "L" or "RGB"; UnreadableFile says why not.
    ``draft_size`` lets JPEGs decode at a reduced scale (same pixels read, so the same files fail)."""
    try:
        with Image.open(path) as image:
            if draft_size:
                image.draft(mode, (draft_size, draft_size))  # JPEG only: decode at reduced scale
            image.load()
            return _flatten(image, mode)
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError... on damaged files
        raise UnreadableFile(_reason(path, e)) from None


def read_image(path: Path, size: int, mode: str) -> np.ndarray:
    """One file as a (C, size, size) uint8 array, centre-cropped and resized (training)."""
    return from_pil(square_crop_resize(open_image(path, mode, draft_size=size), size))


def read_native(path: Path) -> np.ndarray:
    """One file as an (H, W, 3) uint8 RGB array at its own size (FID)."""
    return np.asarray(open_image(path, "RGB"), dtype=np.uint8)


def skipped_loose(scan: FolderScan) -> list[tuple[Path, str]]:
    return [(f, "beside the class folders, so in no class") for f in scan.loose]


def decoded(scan: FolderScan, read, skipped: list[tuple[Path, str]]) -> Iterator[tuple[int, np.ndarray]]:
    """(index in scan.files, array) of every readable file, in order; each unreadable one is
    appended to ``skipped`` as (file, reason) instead."""
    for i, path in enumerate(scan.files):
        try:
            yield i, read(path)
        except UnreadableFile as e:
            skipped.append((path, str(e)))


def named(root: Path, skipped: list[tuple[Path, str]]) -> list[tuple[str, str]]:
    """(file relative to ``root``, reason) pairs: how skipped files are kept and shown."""
    return [(Path(f).relative_to(root).as_posix(), why) for f, why in skipped]


def skipped_lines(skipped: list[tuple[str, str]], limit: int = SHOWN_SKIPPED) -> list[str]:
    """One line per skipped file ("skipped NAME: reason"), the first ``limit``, then one line
    counting the rest."""
    lines = [f"skipped {name}: {why}" for name, why in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"... and {len(skipped) - limit} more skipped file(s)")
    return lines


def load_folder(spec: str, root: Path, size: int | None, channels: int | None,
                scan: FolderScan, progress: Progress | None = None) -> ImageDataset:
    """Decode every scanned file; unreadable ones are skipped and named, never fatal."""
    size = size or DEFAULT_SIZE
    mode = "L" if channels == 1 else "RGB"
    if not scan.files:
        raise DatasetError(f"{FOLDER_PREFIX}{root} contains no image files "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = np.empty((len(scan.files), 1 if mode == "L" else 3, size, size), dtype=np.uint8)
    kept: list[int] = []
    skipped = skipped_loose(scan)
    tick = throttled(progress, len(scan.files))
    for i, image in decoded(scan, lambda p: read_image(p, size, mode), skipped):
        images[len(kept)] = image
        kept.append(i)
        tick(i + 1)
    tick(len(scan.files))
    if not kept:
        raise DatasetError(f"{FOLDER_PREFIX}{root} has no readable images ({len(scan.files)} files failed to decode; "
                           f"{skipped_lines(named(root, skipped), 1)[0]})")
    labels = None if scan.labels is None else np.asarray(scan.labels, dtype=np.int64)[kept]
    kind = "none" if labels is None else "class"
    return ImageDataset(spec, images[:len(kept)], labels, kind, list(scan.class_names),
                        skipped=named(root, skipped))

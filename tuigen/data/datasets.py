"""``load_dataset``: resolve a spec, serve it from the .npz cache or prepare and cache it."""

from __future__ import annotations

from pathlib import Path

from . import cache
from .builtin import load_digits, load_faces, load_mnist, load_mnist_m
from .catalog import BUILTIN, DatasetError, check_dataset_spec, folder_path
from .core import ImageDataset, Progress
from .folder import DEFAULT_SIZE, load_folder, scan_folder
from .imaging import adapt
from .shapes import load_shapes

__all__ = ["ImageDataset", "load_dataset"]

_NATIVE_LOADERS = {"mnist": load_mnist, "digits": load_digits, "mnist-m": load_mnist_m, "faces": load_faces}


def _check_size(spec: str, image_size: int | None) -> None:
    # bool is an int subclass; image_size=True is a caller bug, not a 1-pixel request.
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise DatasetError(f"dataset {spec!r}: image_size must be a positive integer, got {image_size!r}")


def _check_channels(spec: str, channels: int | None) -> None:
    if channels is not None and channels not in (1, 3):
        raise DatasetError(f"dataset {spec!r}: channels must be 1 or 3, got {channels!r}")


def _cached(path: Path, spec: str, size: int, channels: int) -> ImageDataset | None:
    found = cache.load(path, spec)
    # The key already encodes the shape; checking again guards against a hand-edited or foreign file.
    if found is not None and found.images.shape[1:] == (channels, size, size):
        return found
    return None


def _prepare_builtin(spec: str, size: int, channels: int, cache_dir: str | Path | None,
                     progress: Progress | None) -> ImageDataset:
    if spec == "shapes":
        # Rendered at the target size (crisp at any size); only the channel count is adapted.
        dataset = load_shapes(spec, size, progress)
    elif (size, channels) == (BUILTIN[spec].native_size, BUILTIN[spec].channels):
        return _NATIVE_LOADERS[spec](spec)
    else:
        # Derive from the (cached) native arrays, so e.g. mnist-m is blended once for all sizes.
        dataset = load_dataset(spec, cache_dir=cache_dir)
    dataset.images = adapt(dataset.images, size, channels, progress)
    return dataset


def _load_builtin(spec: str, size: int | None, channels: int | None, cache_dir: str | Path | None,
                  progress: Progress | None) -> ImageDataset:
    info = BUILTIN[spec]
    size, channels = size or info.native_size, channels or info.channels
    path = cache.cache_file(cache_dir, spec, size, channels)
    dataset = _cached(path, spec, size, channels)
    if dataset is None:
        dataset = _prepare_builtin(spec, size, channels, cache_dir, progress)
        cache.save(path, dataset)
    return dataset


def _load_folder(spec: str, size: int | None, channels: int | None, cache_dir: str | Path | None,
                 progress: Progress | None) -> ImageDataset:
    root = Path(folder_path(spec)).resolve()
    scan = scan_folder(root)
    size, channels = size or DEFAULT_SIZE, channels or 3
    # Keyed by content: an edited folder never hits a stale entry; an identical copy does.
    fingerprint = scan.fingerprint()
    path = cache.cache_file(cache_dir, "folder", size, channels, extra=fingerprint)
    dataset = _cached(path, spec, size, channels)
    if dataset is None:
        dataset = load_folder(spec, root, size, channels, scan, progress)
        cache.save(path, dataset)
    dataset.source = f"folder-{fingerprint}"
    return dataset


def load_dataset(spec: str, image_size: int | None = None, channels: int | None = None, *,
                 cache_dir: str | Path | None = None, progress: Progress | None = None) -> ImageDataset:
    """Load a built-in dataset or ``folder:PATH`` as uint8 (N, C, S, S) images.

    ``image_size`` None keeps the native size (64 for folders); ``channels`` None keeps
    the native channels (RGB for folders); 1 converts RGB to grey, 3 replicates grey.
    Prepared arrays are cached under ``<cache_dir>/data`` (see ``cache.cache_root``).
    ``progress(done, total)`` is called while images are prepared and once more when
    the dataset is ready (the only call on a cache hit).
    """
    info = check_dataset_spec(spec)
    _check_size(spec, image_size)
    _check_channels(spec, channels)
    loader = _load_folder if info is None else _load_builtin
    dataset = loader(spec, image_size, channels, cache_dir, progress)
    dataset.name = spec
    dataset.source = dataset.source or spec  # a built-in's pixels are named by it (and DATA_VERSION)
    if progress is not None:
        progress(len(dataset), len(dataset))
    return dataset

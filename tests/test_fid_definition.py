"""FID as pytorch-fid defines it, one folder reader for training and FID, and folder references
identified by content (issue 12 items 2 and 8; issue 11 item 13).

Inception runs at a few images/s on 2 CPU cores: the sets are 16 images, extracted once per
module where they can be (pytorch-fid's own pass needs its own extraction)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_in_context

N = 16


@pytest.fixture(scope="module", autouse=True)
def fid_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tuigen-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUIGEN_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def folders(tmp_path_factory, fid_cache) -> tuple[Path, Path]:
    """Two flat folders of N real 28x28 RGB PNGs: MNIST-M and a noisier copy."""
    from tuigen.data import load_dataset

    images = load_dataset("mnist-m").images[:N].transpose(0, 2, 3, 1)
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 40, images.shape), 0, 255).astype(np.uint8)
    root = tmp_path_factory.mktemp("fid-folders")
    for name, arr in (("a", images), ("b", noisy)):
        (root / name).mkdir()
        for i, im in enumerate(arr):
            Image.fromarray(im).save(root / name / f"{i:03d}.png")
    return root / "a", root / "b"


# -- 8. the default is pytorch-fid's FID --------------------------------------------------------
def test_default_fid_is_what_pytorch_fid_prints_and_eigh_agrees_with_its_sqrtm(folders, cli, capsys,
                                                                               one_torch_thread):
    """pytorch-fid's own functions, as `pytorch-fid A B` runs them (calculate_fid_given_paths:
    compute_statistics_of_path per folder, then calculate_frechet_distance), its InceptionV3
    carrying the mapped TF weights instead of its download."""
    from pytorch_fid import fid_score

    from tuigen.metrics import inception
    from tuigen.metrics.fid import fid_from_stats

    model = inception.mapped_inception(resize_input=True, normalize_input=True)  # InceptionV3([3]) + weights
    stats = [fid_score.compute_statistics_of_path(str(p), model, 50, 2048, "cpu", num_workers=0) for p in folders]
    theirs = fid_score.calculate_frechet_distance(*stats[0], *stats[1])  # scipy's sqrtm
    capsys.readouterr()  # what pytorch-fid printed (its singular-product notice)
    code, out, err = cli("fid", *folders, "--json")
    assert code == 0, err
    ours = json.loads(out)
    assert ours["fid"] == pytest.approx(theirs, rel=1e-3)
    assert ours["provenance"]["fid_mode"] == "pytorch-fid" and ours["provenance"]["fid_method"] == "eigh"
    # the default distance on real Inception features: eigh agrees with sqrtm to 1e-6
    assert fid_from_stats(*stats[0], *stats[1], method="eigh") == pytest.approx(theirs, rel=1e-6)


def test_the_tf_mode_takes_299px_only_and_its_scores_are_ranked_apart(folders, store):
    from tuigen.metrics import FIDError
    from tuigen.metrics.fid import compare, compare_stats, folder_stats
    from tuigen.reports.leaderboard import leaderboard
    from tuigen.trained.provenance import fid_provenance

    with pytest.raises(FIDError, match="tf299 takes 299x299 images"):
        folder_stats(folders[0], mode="tf299")  # 28x28 images
    big = [np.random.default_rng(i).integers(0, 255, (2, 3, 299, 299), dtype=np.uint8) for i in range(2)]
    tf = compare(*big, mode="tf299", device="cpu", cache=False)
    # the default mode's result of the two folders (cached by the CLI call above)
    default = compare_stats(*(folder_stats(p, device="cpu").stats for p in folders), device="cpu")
    assert tf.provenance["fid_mode"] == "tf299" and "x128-1" in tf.provenance["extractor"]
    assert default.provenance["fid_mode"] == "pytorch-fid" and "x127.5-1" in default.provenance["extractor"]
    for result in (tf, default):
        run = store.create_run("ddpm", "{}", dataset="mnist")
        store.add_score(run.id, "fid", result.fid, fid_provenance(result, "ref", {"sampler": "ddim"}, "ema"))
    board = leaderboard(store, "fid")
    assert len(board.rows) == 1 and len(board.others) == 1  # never ranked together


# -- issue 11.13: one reader, every skipped file named -----------------------------------------
def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def messy(tmp_path) -> Path:
    """3 good PNGs, a GIF, an empty PNG, a text file named .jpg, a truncated PNG and 20 more empty
    PNGs (so the list of skipped files passes 20)."""
    root = tmp_path / "messy"
    root.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        (root / f"good{i}.png").write_bytes(_png(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)))
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / "moving.gif")
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("not a picture at all")
    (root / "truncated.png").write_bytes(_png(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))[:200])
    for i in range(20):
        (root / f"z{i:02d}.png").write_bytes(b"")
    (root / "notes.txt").write_text("no image suffix: not an image file, not skipped")
    return root


EXPECTED_SKIPPED = {"empty.png": "empty file", "text.jpg": "not an image (no format PIL knows)",
                    "truncated.png": "damaged (image file is truncated)",
                    **{f"z{i:02d}.png": "empty file" for i in range(20)}}


def test_training_and_fid_skip_the_same_files_and_name_each(messy, cli, store, one_torch_thread):
    from tuigen.data import load_dataset
    from tuigen.experiments.diffusion import DDPMConfig
    from tuigen.experiments.diffusion_train import train
    from tuigen.config import build, to_json
    from tuigen.metrics.fid import folder_stats

    data = load_dataset(f"folder:{messy}", 8)
    assert dict(data.skipped) == EXPECTED_SKIPPED and len(data) == 4  # the GIF is read
    calls: list[tuple[int, int]] = []
    fid = folder_stats(messy, device="cpu", batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert dict(fid.skipped) == EXPECTED_SKIPPED and fid.stats.n == 4
    assert len(calls) >= 3 and calls[0][0] < calls[-1][0]  # extracted batch by batch as files are decoded

    cfg = build(DDPMConfig, dict(dataset=f"folder:{messy}", image_size=8, channels=8, dim_mults=(1, 2),
                                 num_res_blocks=1, attn_resolutions=(), timesteps=10, batch_size=4,
                                 train_num_steps=1, sample_every=10, device="cpu"))
    run = store.create_run("ddpm", to_json(cfg), dataset=cfg.dataset)
    run_in_context(train, store, cfg, run)
    events = [e.message for e in store.events(run.id)]
    named = [m for m in events if m.startswith("skipped ")]
    assert named == [f"skipped {f}: {why}" for f, why in list(data.skipped)[:20]]
    assert "... and 3 more skipped file(s)" in events and any("23 file(s) skipped" in m for m in events)

    code, out, err = cli("fid", messy, messy, "--json")
    assert code == 0, err
    assert json.loads(out)["provenance"]["n_a"] == 4
    shown = [line.strip() for line in err.splitlines() if line.strip().startswith("skipped ")]
    assert shown == named + named and err.count("... and 3 more skipped file(s)") == 2


@pytest.mark.parametrize("content", [None, "notes.txt", ".hidden.png"])
def test_a_folder_dataset_without_images_is_refused_at_launch(cli, store, tmp_path, content):
    empty = tmp_path / "nothing"
    empty.mkdir()
    if content:
        (empty / content).write_bytes(b"x")
    code, _, err = cli("run", "ddpm", "--dataset", f"folder:{empty}")
    assert code == 2 and "holds no image files" in err and str(empty) in err
    assert store.list_runs() == []


# -- 2. folder references are fingerprinted by content -----------------------------------------
def _rewrite_same_size_and_time(path: Path, value: int) -> None:
    """New pixels, same file size (uncompressed BMP) and the same modification time."""
    st = path.stat()
    Image.fromarray(np.full((10, 10, 3), value, np.uint8)).save(path, format="BMP")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def test_an_edited_folder_is_a_new_reference_everywhere(tmp_path, fid_cache):
    from tuigen.data import load_dataset
    from tuigen.data.folder import scan_folder
    from tuigen.metrics.evaluators import evaluator_file
    from tuigen.metrics.fid import folder_identity
    from tuigen.trained.provenance import reference_identity

    root = tmp_path / "refs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((10, 10, 3), 50 * i + 10, np.uint8)).save(root / cls / f"{i}.bmp")
    before = load_dataset(f"folder:{root}", 8)
    ids = (before.source, reference_identity(before), evaluator_file(before), folder_identity(scan_folder(root).fingerprint()))
    _rewrite_same_size_and_time(root / "a" / "0.bmp", 250)
    after = load_dataset(f"folder:{root}", 8)
    assert after.images[0].min() > 240  # the data cache was not reused
    new_ids = (after.source, reference_identity(after), evaluator_file(after),
               folder_identity(scan_folder(root).fingerprint()))
    assert all(x != y for x, y in zip(ids, new_ids)), (ids, new_ids)
    copy = tmp_path / "copy"
    os.rename(root, copy)  # the same content elsewhere is the same reference
    assert reference_identity(load_dataset(f"folder:{copy}", 8)) == new_ids[1]


def test_big_folders_are_fingerprinted_by_names_sizes_and_times(tmp_path):
    from tuigen.data.folder import scan_folder

    for i in range(2):
        Image.fromarray(np.full((10, 10, 3), i, np.uint8)).save(tmp_path / f"{i}.bmp")
    scan = scan_folder(tmp_path)
    first = scan.fingerprint(hash_budget=0)
    assert first.startswith("stat-") and scan.fingerprint().startswith("bytes-")
    os.utime(tmp_path / "1.bmp", ns=(1, 10**18))
    assert scan.fingerprint(hash_budget=0) != first


def test_mnist_m_fails_loudly_when_a_photo_cannot_be_loaded(monkeypatch):
    from skimage import data as skdata

    from tuigen.data import DatasetError
    from tuigen.data.builtin import load_mnist_m

    def unavailable():
        raise OSError("wants a download")

    monkeypatch.setattr(skdata, "coffee", unavailable)
    with pytest.raises(DatasetError, match="photo 'coffee' could not be loaded"):
        load_mnist_m()

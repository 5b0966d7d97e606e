"""`tuigen fid` end to end on tiny sets: a run's samples against its data, and two folders."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from conftest import wait_status


def make_folder(root, n=10, seed=0):
    rng = np.random.default_rng(seed)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_fid_of_a_run_is_stored_with_provenance_and_ranked(cli, store, tmp_path):
    data = make_folder(tmp_path / "imgs")
    code, out, err = cli("run", "ddpm", "--dataset", f"folder:{data}", "--image_size", "8", "--channels", "8",
                         "--dim_mults", "1,2", "--attn_resolutions", "", "--timesteps", "20", "--batch_size", "8",
                         "--train_num_steps", "4", "--sample_every", "4", "--sample_steps", "2",
                         "--fid_every", "2", "--fid_n", "8", "--json")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    run = wait_status(store, run_id, ["completed", "failed"], timeout=180)
    assert run.status == "completed", run.error
    assert [p.step for p in store.metrics(run_id, "fid")] == [2, 4]  # FID over training is a curve
    assert len(store.scores(metric="fid")) == 2
    code, out, err = cli("fid", str(run_id), "-n", "12", "--steps", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert np.isfinite(result["fid"]) and result["comparable"] is False  # 12 images: flagged
    fid, kid = store.scores(metric="fid")[2:], store.scores(metric="kid")[2:]  # after the periodic ones
    assert len(fid) == 1 and len(kid) == 1 and fid[0].step == 4
    prov = json.loads(fid[0].provenance)
    assert prov["n"] == 12 and prov["reference_n"] == 20 and prov["sampler"] == "ddim" and prov["steps"] == 2
    assert prov["fid_mode"] == "pytorch-fid" and "x127.5-1" in prov["input_scaling"] and prov["seed"] == 0
    code, out, _ = cli("board", "--metric", "fid")  # n=12 and n=8 scores are not ranked together
    assert code == 0 and "not ranked here" in out


def test_fid_of_two_folders_and_bad_input(cli, tmp_path):
    a, b = make_folder(tmp_path / "a", seed=1), make_folder(tmp_path / "b", seed=2)
    code, out, err = cli("fid", str(a), str(a), "--json")
    assert code == 0, err
    assert abs(json.loads(out)["fid"]) < 1e-3
    code, out, err = cli("fid", str(a), str(b), "--json")
    assert code == 0 and json.loads(out)["fid"] > 0
    code, _, err = cli("fid", str(a), str(tmp_path / "missing"))
    assert code == 2 and "is not a folder" in err

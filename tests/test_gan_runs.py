"""GAN kinds through the real worker, and `tuigen sample` on their checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import wait_status

TINY = {"dcgan": ["--g_width", "8", "--d_width", "8"], "cgan": ["--g_width", "8", "--d_width", "8"],
        "stylegan": ["--g_width", "8", "--d_width", "8"]}


@pytest.mark.parametrize("kind", ["dcgan", "cgan", "stylegan"])
def test_gan_trains_through_the_worker_and_samples(cli, store, tmp_path, kind):
    code, out, err = cli("run", kind, "--dataset", "digits", "--image_size", "16", "--batch_size", "16",
                         "--train_num_steps", "12", "--sample_every", "6", "--checkpoint_every", "6",
                         *TINY[kind], "--json")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    run = wait_status(store, run_id, ["completed", "failed"], timeout=120)
    assert run.status == "completed", run.error
    summary = store.summary(run_id)
    assert {"d_loss", "g_loss"} <= set(summary) and np.isfinite(summary["d_loss"].last)
    assert store.artifacts(run_id, kind="image", key="samples")
    extra = ["--truncation", "0"] if kind == "stylegan" else (["--labels", "3"] if kind == "cgan" else [])
    code, _, err = cli("sample", str(run_id), "-n", "5", "--batch", "2", "--format", "npz",
                       "--out", str(tmp_path / "s"), *extra)
    assert code == 0, err
    images = np.load(tmp_path / "s" / "samples.npz")["images"]
    assert images.shape == (5, 16, 16, 1)
    if kind == "stylegan":  # psi = 0: every z maps to the mean image
        assert all(np.array_equal(images[0], im) for im in images)
    meta = json.loads(store.artifacts(run_id, kind="samples")[-1].meta)
    assert meta["sampler"] == "gan" and meta["checkpoint_step"] == 12


def test_sampling_a_gan_run_without_checkpoints_is_a_clear_error(cli, store):
    run = store.create_run("dcgan", "{}")
    code, _, err = cli("sample", str(run.id))
    assert code == 2 and f"run {run.id} has no checkpoint yet" in err

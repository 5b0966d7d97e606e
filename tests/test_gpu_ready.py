"""Ready for a GPU, tested on the CPU: which physical GPU a run gets and what its worker sees
(a fake NVML count), RNG states of more GPUs than present, precision on resume, host syncs per
training step, and the prepared GPU smoke check at tiny sizes."""
from __future__ import annotations

import json

import pytest

from tuigen.runner.launcher import device_env
from tuigen.runner.monitor import local_gpus
from tuigen.store import HOST

FAST = ["--dataset", "digits", "--width", "8", "--batch_size", "32", "--train_num_steps", "4"]


# -- item 1: --device cuda:N names a physical GPU --------------------------------------------
@pytest.mark.parametrize("fake_gpus", ["0", "1"])
def test_device_cuda_n_without_that_gpu_is_refused_at_launch(cli, store, monkeypatch, fake_gpus):
    monkeypatch.setenv("TUIGEN_FAKE_GPUS", fake_gpus)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("TUIGEN_GPUS", raising=False)
    code, out, err = cli("run", "classifier", *FAST, "--device", "cuda:1")
    assert code == 2 and err.count("\n") == 1 and "--device cuda:1" in err, err
    assert store.list_runs() == []  # nothing queued


def test_users_cuda_visible_devices_narrows_what_the_queue_hands_out(cli, store, monkeypatch):
    monkeypatch.setenv("TUIGEN_FAKE_GPUS", "4")
    monkeypatch.delenv("TUIGEN_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert local_gpus() == ["cuda:2", "cuda:3"]
    code, _, err = cli("run", "classifier", *FAST, "--device", "cuda:0")
    assert code == 2 and "cuda:2, cuda:3" in err and store.list_runs() == []
    monkeypatch.setenv("TUIGEN_GPUS", "1")  # what the launcher gives a worker: the user's restriction
    assert local_gpus() == ["cuda:1"]


def test_queue_gives_the_named_gpu_and_cpu_runs_take_none(store):
    gpus = ["cuda:0", "cuda:1"]
    named = store.create_run("classifier", {"device": "cuda:1"})
    cpu = store.create_run("classifier", {"device": "cpu"})
    anyone = store.create_run("classifier", {"device": "auto"})
    claimed = store.claim_queued(HOST, 2, devices=gpus, cpu_slots=1)
    assert [(r.id, r.device) for r in claimed] == [(named.id, "cuda:1"), (cpu.id, "cpu"), (anyone.id, "cuda:0")]
    second_named = store.create_run("classifier", {"device": "cuda:1"})
    assert store.claim_queued(HOST, 2, devices=gpus, cpu_slots=1) == []  # GPU 1 busy: it waits
    store.transition(named.id, "completed", when=["starting"])
    assert [r.id for r in store.claim_queued(HOST, 2, devices=gpus, cpu_slots=1)] == [second_named.id]


def test_the_worker_sees_only_its_gpu_in_pci_order_and_a_cpu_run_sees_none():
    env = device_env("cuda:1", ["0", "1"])
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["TUIGEN_GPUS"] == "0,1"  # the queue it schedules on exit keeps the user's GPUs
    assert device_env("cpu", [])["CUDA_VISIBLE_DEVICES"] == "-1"


# -- item 3: resume with fewer GPUs visible than when saved -----------------------------------
def test_a_checkpoint_with_rng_states_of_more_gpus_than_present_resumes(store):
    import torch

    from tuigen.runner.context import TorchContext
    from tuigen.trained import checkpoint as ckpt

    saved = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # as if 4 GPUs were visible
    assert ckpt.cuda_states_to_restore(saved, 1) == saved[:1]
    assert ckpt.cuda_states_to_restore(saved[:1], 2) == saved[:1]
    run = store.create_run("classifier", {})
    ctx = TorchContext(store, run.id, run.run_dir, None, device=torch.device("cpu"))
    ckpt.save_atomic({"step": 3, "rng": {**ckpt.capture_rng(), "cuda": saved}}, ctx.checkpoint_dir / "ckpt-0000003.pt")
    assert ctx.load_checkpoint()["step"] == 3 and ctx.step == 3
    ctx.close()


# -- item 4: precision on resume, bf16 where there is none ------------------------------------
def test_explicit_bf16_is_refused_on_a_gpu_without_it_and_kept_on_the_cpu():
    import torch

    from tuigen.config import ConfigError
    from tuigen.experiments.common import amp_dtype

    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    with pytest.raises(ConfigError, match="--precision bf16"):
        amp_dtype("bf16", gpu, bf16_supported=False)
    assert amp_dtype("auto", gpu, bf16_supported=False) is torch.float16
    assert amp_dtype("auto", gpu, bf16_supported=True) is torch.bfloat16
    assert amp_dtype("fp16", gpu, bf16_supported=True) is torch.float16
    assert [amp_dtype(p, cpu) for p in ("auto", "fp32", "bf16", "fp16")] == [None, None, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("first, then", [("bf16", "fp16"), ("fp16", "fp32")])
def test_a_run_resumed_in_another_precision_continues(store, first, then):
    """A disabled GradScaler (fp32/bf16) saves an empty state; resuming in fp16 (a CPU GradScaler
    here) starts the scaler afresh, and an fp16 run's scaler state is ignored by fp32."""
    from conftest import run_in_context
    from tuigen.config import build, to_json
    from tuigen.experiments.classifier import ClassifierConfig
    from tuigen.experiments.classifier_train import train

    values = dict(dataset="digits", width=8, batch_size=16, train_num_steps=3, eval_every=3, device="cpu")
    cfg = build(ClassifierConfig, {**values, "precision": first})
    run = store.create_run("classifier", to_json(cfg), dataset="digits")
    run_in_context(train, store, cfg, run)
    cfg = build(ClassifierConfig, {**values, "precision": then, "train_num_steps": 6})
    ctx = run_in_context(train, store, cfg, run)
    assert ctx.step == 6 and max(p.step for p in store.metrics(run.id, "loss")) == 6


# -- host syncs per training step -----------------------------------------------------------
SYNC_RUNS = {  # tiny real runs; every 5th step logs / evaluates / checkpoints
    "classifier": dict(dataset="digits", width=8, batch_size=16, eval_every=5, checkpoint_every=5),
    "ddpm": dict(dataset="digits", image_size=8, channels=8, dim_mults=(1, 2), num_res_blocks=1,
                 attn_resolutions=(), timesteps=10, batch_size=8, log_every=5, sample_every=100,
                 checkpoint_every=5, sample_steps=2, num_samples=2),
    "dann": dict(source="digits", target="mnist", image_size=16, width=4, batch_size=16, steps_per_epoch=5,
                 epochs=2, tsne_points=0),
    "dcgan": dict(dataset="digits", image_size=16, batch_size=8, g_width=8, d_width=8, log_every=5,
                  sample_every=100, checkpoint_every=5, num_samples=4),
}


@pytest.mark.parametrize("kind", list(SYNC_RUNS))
def test_a_training_step_makes_the_host_wait_for_the_device_at_most_at_log_steps(store, kind, one_torch_thread):
    from conftest import run_in_context
    from tuigen.config import build, to_json
    from tuigen.experiments import get_kind

    k = get_kind(kind)
    steps = {"train_num_steps": 10} if kind != "dann" else {}
    cfg = build(k.config, {**SYNC_RUNS[kind], **steps, "device": "cpu"})
    run = store.create_run(kind, to_json(cfg), dataset=getattr(cfg, "dataset", "digits"))
    ctx = run_in_context(k.load(), store, cfg, run, lambda c: c.count_syncs())
    per_step = ctx.syncs.per_step
    assert sorted(per_step) == list(range(1, 11))
    quiet = {s: n for s, n in per_step.items() if s % 5}
    assert max(quiet.values()) == 0, quiet  # nothing read back between log steps
    assert max(per_step.values()) <= 20, per_step  # a log, evaluation or checkpoint step: a few reads
    logged = {p.key: p.value for p in store.metrics(run.id) if p.key.startswith("host_syncs")}
    assert logged == {"host_syncs_per_step": 0.0, "host_syncs_per_step_mean": sum(per_step.values()) / 10}


# -- item 2: rank 0 alone for longer than the training collective's timeout -------------------
def _rank_alone(rank: int, init: str, out: str, wait: bool) -> None:
    import time
    from datetime import timedelta
    from pathlib import Path

    import torch
    import torch.distributed as dist

    from tuigen.runner.ddp_context import ALONE_TIMEOUT, wait_for_main

    # Setting up is not under test: a generous default timeout, so a loaded machine cannot fail it.
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=timedelta(seconds=120))
    training = dist.new_group(backend="gloo", timeout=timedelta(seconds=3))  # the short collective timeout
    waiting = dist.new_group(backend="gloo", timeout=ALONE_TIMEOUT)  # as DistributedContext makes it
    try:
        if rank == 0:
            time.sleep(6)  # a preview chain or a periodic FID, longer than the collective's timeout
        if wait:
            wait_for_main(waiting)
        t = torch.ones(1)
        dist.all_reduce(t, group=training)  # the next training step's gradient all-reduce
        result = str(float(t))
    except RuntimeError as e:
        result = "timed out" if "imeout" in str(e) or "timed out" in str(e).lower() else f"error: {e}"
    Path(out, f"rank-{rank}-{wait}").write_text(result)


def test_ranks_wait_for_rank_0s_solo_work_outside_the_training_collective(tmp_path):
    """Without the wait (wait=False) rank 1's all-reduce times out after 3 s and the job dies."""
    import torch.multiprocessing as mp

    mp.spawn(_rank_alone, args=(f"file://{tmp_path / 'rendezvous'}", str(tmp_path), True), nprocs=2, join=True)
    assert [(tmp_path / f"rank-{r}-True").read_text() for r in range(2)] == ["2.0", "2.0"]


# -- the prepared GPU smoke check, at tiny sizes on the CPU -----------------------------------
def test_the_gpu_smoke_check_runs_on_the_cpu_at_tiny_sizes():
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny"],
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert done.returncode == 0 and summary["failed"] == [], done.stdout[-3000:] + done.stderr[-3000:]
    status = {r["stage"]: r["status"] for r in summary["stages"]}
    assert {s for s, v in status.items() if v == "PASS"} >= {"environment", "ddpm", "checkpoint_on_cpu",
                                                             "device_masking"}
    assert all(line.split()[0] in ("PASS", "SKIP") for line in lines[:-1])
    ddpm = next(r for r in summary["stages"] if r["stage"] == "ddpm")
    assert ddpm["syncs_per_step"] == 0 and ddpm["images_per_s"] > 0


# -- item 5: NVML rows for the GPUs a run was given -----------------------------------------
def test_a_run_is_sampled_on_every_gpu_it_was_given():
    from tuigen.runner.monitor import ProcessMonitor, gpu_indices

    assert gpu_indices("cuda:0,1", "0,1") == [0, 1]  # a data-parallel run: both GPUs, not the first
    assert gpu_indices("", "2,3") == [2, 3]  # a Slurm job: its CUDA_VISIBLE_DEVICES
    assert gpu_indices("cuda:MIG-4f1c", "MIG-4f1c") == []  # a MIG slice has no NVML index
    assert gpu_indices("cpu", "-1") == []
    assert ProcessMonitor(1, None, [0, 1]).gpu_hint == [0, 1]


# -- sampling: DDIM at eta 0 draws no per-step noise ----------------------------------------
def test_ddim_at_eta_0_gives_the_same_images_at_any_batch_size_and_bf16_autocasts_the_network():
    """So the periodic FID may sample in bigger batches on a GPU without changing its sample set."""
    import numpy as np
    import torch

    from tuigen.models.unet import UNet
    from tuigen.trained.conditioning import Conditioning
    from tuigen.trained.diffusion import Trained
    from tuigen.models.diffusion import GaussianDiffusion
    from tuigen.trained.sampling import sample

    torch.manual_seed(0)
    model = UNet(image_size=8, in_channels=1, channels=8, dim_mults=(1, 2), num_res_blocks=1, attn_resolutions=()).eval()
    trained = Trained(model, GaussianDiffusion(timesteps=10), Conditioning("none", 0, []), 0, "ema", (1, 8, 8))
    a = sample(trained, 6, batch=2, sampler="ddim", steps=3, seed=5)
    b = sample(trained, 6, batch=6, sampler="ddim", steps=3, seed=5)
    assert np.array_equal(a, b)
    dtypes = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    half = sample(trained, 6, batch=6, sampler="ddim", steps=3, seed=5, precision="bf16")  # the network autocast
    assert half.shape == a.shape and half.dtype == np.uint8 and set(dtypes) == {torch.bfloat16}


# -- the switches ---------------------------------------------------------------------------
def test_the_unet_in_channels_last_computes_what_it_does_in_nchw():
    """What a GPU worker trains (experiments/common.fast_layout), checked where it can run."""
    import torch

    from tuigen.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(image_size=8, in_channels=1, channels=8, dim_mults=(1, 2), num_res_blocks=1,
               attn_resolutions=(4,)).eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 7])
    want = net(x, t)
    net = net.to(memory_format=torch.channels_last)
    got = net(x.contiguous(memory_format=torch.channels_last), t)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compile_is_refused_by_kinds_that_do_not_compile(store):
    from conftest import run_in_context
    from tuigen.config import ConfigError, build, to_json
    from tuigen.experiments.dann import DANNConfig
    from tuigen.experiments.dann_train import train

    cfg = build(DANNConfig, dict(source="digits", target="mnist", compile=True, device="cpu"))
    run = store.create_run("dann", to_json(cfg))
    with pytest.raises(ConfigError, match="--compile"):
        run_in_context(train, store, cfg, run, start=False)

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

"""The prepared GPU smoke check: what must work, and how fast, the first time tuigen meets a GPU.

    make gpu-check                                   # on the GPU machine (under 8 minutes on one GPU)
    .venv/bin/python bench/gpu_check.py --device cpu --tiny    # the suite's run: tiny sizes

Each stage prints one line, `PASS|FAIL|SKIP stage key=value ...`, and the last line is a JSON
summary of them all. Stages run through the real CLI and workers, on a private store in a temp
folder, in order: environment; ddpm training (images/s, host syncs per step, peak GPU memory,
periodic FID); stop, resume and load the checkpoint on the CPU; GANs (StyleGAN in bf16 and
fp16 with R1, DCGAN at 64 px); classifier and DANN; data-parallel NCCL (two GPUs or more);
FID features and DDIM sampling at two batch sizes; the device cases of `--device cuda:N`; and
tuigen's diffusion training against denoising-diffusion-pytorch where that bench peer is
installed. Nothing here needs the network. The exit code is 1 if any stage failed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS: list[dict] = []


def report(status: str, stage: str, **values) -> None:
    RESULTS.append({"stage": stage, "status": status, **values})
    print(f"{status} {stage} " + " ".join(f"{k}={_fmt(v)}" for k, v in values.items()), flush=True)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v).replace(" ", "_")


class Check:
    """A private store and folder; the CLI as a user runs it, one subprocess per command."""

    def __init__(self, folder: Path, device: str, tiny: bool):
        self.folder, self.device, self.tiny = folder, device, tiny
        self.env = {**os.environ, "TUIGEN_DB": f"sqlite:///{folder / 'runs.db'}", "TUIGEN_COUNT_SYNCS": "1",
                    "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        from tuigen.store import Store

        self.store = Store(self.env["TUIGEN_DB"])

    def cli(self, *args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tuigen", *map(str, args)], cwd=self.folder, text=True,
                              capture_output=True, env={**self.env, **(env or {})}, timeout=timeout)

    def launch(self, kind: str, *flags) -> int:
        done = self.cli("run", kind, "--device", self.device, *flags, "--json")
        if done.returncode:
            raise RuntimeError(done.stderr.strip() or done.stdout.strip())
        return json.loads(done.stdout)["id"]

    def wait(self, run_id: int, until=lambda run: run.status in ("completed", "failed", "killed", "crashed"),
             timeout: float = 600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if until(run):
                return run
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} still {self.store.get_run(run_id).status} after {timeout:.0f} s")

    def train(self, kind: str, *flags, timeout: float = 600):
        run = self.wait(self.launch(kind, *flags), timeout=timeout)
        if run.status != "completed":
            raise RuntimeError(f"run {run.id} {run.status}: {(run.error or '').strip().splitlines()[-1:]}")
        return run

    def last(self, run_id: int, key: str):
        points = self.store.metrics(run_id, key)
        return points[-1].value if points else None

    def peak_gpu_mem_gib(self, run_id: int):
        rows = [s.gpu_mem_used for s in self.store.system_samples(run_id) if getattr(s, "gpu_mem_used", None)]
        return round(max(rows) / 2 ** 30, 2) if rows else None


def stage(name: str):
    def wrap(fn):
        def run(check: Check, *args):
            t0 = time.perf_counter()
            try:
                values = fn(check, *args)
            except Exception as e:  # every stage reports; one failure does not hide the rest
                report("FAIL", name, error=f"{type(e).__name__}: {e}"[:300], seconds=time.perf_counter() - t0)
                return None
            if values is None or "skipped" in values:
                report("SKIP", name, **(values or {}))
            else:
                report("PASS", name, **values, seconds=round(time.perf_counter() - t0, 1))
            return values
        return run
    return wrap


@stage("environment")
def environment(check: Check):
    import torch

    values = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
              "devices": torch.cuda.device_count(), "cpu_cores": os.cpu_count()}
    if torch.cuda.is_available():
        from tuigen.experiments.common import gpu_has_bf16

        values.update(gpu=torch.cuda.get_device_name(0), bf16=gpu_has_bf16(), mig=_mig())
    from tuigen.runner.monitor import gpu_count, local_gpus

    values.update(nvml_gpus=gpu_count(), queue_gpus=",".join(local_gpus()) or "none")
    return values


def _mig() -> str:
    try:
        import pynvml

        pynvml.nvmlInit()
        current, _ = pynvml.nvmlDeviceGetMigMode(pynvml.nvmlDeviceGetHandleByIndex(0))
        return "on" if current else "off"
    except Exception as e:
        return f"unknown({type(e).__name__})"


def ddpm_sizes(tiny: bool) -> list[str]:
    if tiny:
        return ["--dataset", "digits", "--image_size", "8", "--channels", "8", "--dim_mults", "1,2",
                "--num_res_blocks", "1", "--attn_resolutions", "4", "--timesteps", "20", "--batch_size", "8",
                "--log_every", "5", "--sample_every", "100", "--sample_steps", "2", "--num_samples", "4"]
    return ["--dataset", "mnist", "--image_size", "32", "--channels", "64", "--batch_size", "64",
            "--log_every", "50", "--sample_every", "300", "--sample_steps", "50", "--fid_every", "300",
            "--fid_n", "1000"]


@stage("ddpm")
def ddpm(check: Check):
    steps = 10 if check.tiny else 300
    run = check.train("ddpm", *ddpm_sizes(check.tiny), "--train_num_steps", steps, "--checkpoint_every", steps)
    check.ddpm_run = run.id
    return {"steps": steps, "images_per_s": check.last(run.id, "images_per_s"),
            "syncs_per_step": check.last(run.id, "host_syncs_per_step"),
            "syncs_per_step_mean": check.last(run.id, "host_syncs_per_step_mean"),
            "peak_gpu_mem_gib": check.peak_gpu_mem_gib(run.id), "fid": check.last(run.id, "fid")}


@stage("resume")
def resume(check: Check):
    """Stop a run mid-way (SIGTERM: it checkpoints), resume it, and find one unbroken curve."""
    if check.tiny:
        return {"skipped": "two more worker starts (tests/test_runs.py resumes on the CPU)"}
    run_id = check.launch("ddpm", *ddpm_sizes(False), "--train_num_steps", 400, "--fid_every", 0)
    check.wait(run_id, lambda r: r.step >= 50 or r.status not in ("queued", "starting", "running"))
    check.cli("kill", run_id, "--wait", 60)
    stopped = check.wait(run_id)
    if stopped.status != "killed":
        raise RuntimeError(f"run {run_id} {stopped.status} before it could be stopped")
    done = check.cli("resume", run_id)
    if done.returncode:
        raise RuntimeError(done.stderr.strip())
    run = check.wait(run_id)
    steps = [p.step for p in check.store.metrics(run_id, "loss")]
    if steps != sorted(set(steps)) or run.status != "completed":
        raise RuntimeError(f"status {run.status}, loss steps {steps[:5]}...{steps[-5:]} (a gap or a repeat)")
    return {"stopped_at": stopped.step, "resumed_to": run.step}


@stage("checkpoint_on_cpu")
def checkpoint_on_cpu(check: Check):
    run_id = getattr(check, "ddpm_run", None)
    if run_id is None:
        return {"skipped": "no ddpm run"}
    done = check.cli("sample", run_id, "--device", "cpu", "-n", 4, "--batch", 4, "--steps", 2, "--format", "npz")
    if done.returncode:
        raise RuntimeError(done.stderr.strip())
    return {"run": run_id, "images": 4}


@stage("gans")
def gans(check: Check):
    if check.tiny:
        return {"skipped": "GPU sizes only (test_gan_runs covers the CPU)"}
    out = {}
    for precision in ("bf16", "fp16"):
        run = check.train("stylegan", "--dataset", "mnist", "--image_size", "32", "--train_num_steps", 200,
                          "--precision", precision, "--r1_every", 4, "--log_every", 50)
        out[f"stylegan_{precision}_images_per_s"] = check.last(run.id, "images_per_s")
    run = check.train("dcgan", "--dataset", "mnist", "--image_size", "64", "--train_num_steps", 300)
    out["dcgan64_images_per_s"] = check.last(run.id, "images_per_s")
    return out


@stage("classifier_dann")
def classifier_dann(check: Check):
    if check.tiny:
        return {"skipped": "GPU sizes only (tests/test_gpu_ready.py counts their syncs on the CPU)"}
    steps = 300
    run = check.train("classifier", "--dataset", "digits", "--width", 8, "--batch_size", 32,
                      "--train_num_steps", steps, "--eval_every", steps)
    out = {"classifier_syncs_per_step": check.last(run.id, "host_syncs_per_step"),
           "val_acc": check.last(run.id, "val_acc")}
    run = check.train("dann", "--source", "mnist", "--target", "mnist-m", "--epochs", 2)
    out.update(dann_target_acc=check.last(run.id, "target_acc"),
               dann_syncs_per_step=check.last(run.id, "host_syncs_per_step"))
    return out


@stage("ddp_nccl")
def ddp_nccl(check: Check):
    import torch

    if check.device == "cpu" or torch.cuda.device_count() < 2:
        return {"skipped": "NCCL ranks need two GPUs (tests/test_ddp.py runs gloo ranks on the CPU)"}
    run = check.train("ddpm", *ddpm_sizes(False), "--train_num_steps", 100, "--fid_every", 0, "--gpus", 2)
    return {"images_per_s": check.last(run.id, "images_per_s")}


@stage("sampling")
def sampling(check: Check):
    run_id = getattr(check, "ddpm_run", None)
    if run_id is None or check.tiny:
        return {"skipped": "GPU sizes only" if check.tiny else "no ddpm run"}
    n, out = 512, {}
    for batch, precision in ((64, "fp32"), (256, "fp32"), (256, "bf16")):
        done = check.cli("sample", run_id, "--device", check.device, "-n", n, "--batch", batch, "--steps", 50,
                         "--format", "npz", "--precision", precision)
        if done.returncode:
            raise RuntimeError(done.stderr.strip())
        # "wrote N samples to F (X images/s)": the sampling alone, not the process start
        out[f"ddim50_{precision}_batch{batch}_images_per_s"] = float(done.stdout.strip().rsplit("(", 1)[-1].split()[0])
    return out


@stage("fid_features")
def fid_features(check: Check):
    """Inception features of 5,000 MNIST digits at two batch sizes (the cache off: each is computed)."""
    if check.tiny:
        return {"skipped": "GPU sizes only (tests/test_fid.py extracts on the CPU)"}
    import numpy as np

    from tuigen.data import load_dataset
    from tuigen.metrics.fid import image_features

    images = load_dataset("mnist").images[:5000]
    out = {}
    for batch in (50, 200):
        t0 = time.perf_counter()
        features = image_features(images, batch_size=batch, device=check.device, cache=False)
        out[f"images_per_s_batch{batch}"] = len(images) / (time.perf_counter() - t0)
        out["finite"] = bool(np.isfinite(features).all())
    return out


@stage("device_masking")
def device_masking(check: Check):
    import torch

    absent = torch.cuda.device_count()  # no GPU has this physical index here
    before = len(check.store.list_runs())
    refused = check.cli("run", "classifier", "--device", f"cuda:{absent}", "--train_num_steps", 1)
    if refused.returncode != 2 or len(check.store.list_runs()) != before:  # refused, and nothing queued
        raise RuntimeError(f"--device cuda:{absent} exited {refused.returncode}: {refused.stderr.strip()}")
    out = {"absent_gpu_exit": refused.returncode}
    faked = check.cli("run", "classifier", "--device", "cuda:1", env={"TUIGEN_FAKE_GPUS": "1"})
    out["fake_one_gpu_cuda1_exit"] = faked.returncode
    if faked.returncode != 2:
        raise RuntimeError(f"TUIGEN_FAKE_GPUS=1 --device cuda:1 exited {faked.returncode}")
    if absent:
        last = f"cuda:{absent - 1}"  # the highest GPU: masked, it is cuda:0 inside the worker
        run = check.train("classifier", "--dataset", "digits", "--train_num_steps", 20, "--device", last)
        out[f"{last}_ran_on"] = run.device
    return out


@stage("lucidrains")
def lucidrains(check: Check):
    try:
        import denoising_diffusion_pytorch  # noqa: F401  (the bench-only peer: make bench installs it)
    except ImportError:
        return {"skipped": "denoising-diffusion-pytorch not installed (pip install it, or make bench)"}
    if check.tiny:
        return {"skipped": "GPU sizes only"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ddpm_vs_lucidrains.py"), "--image_size", "64",
                           "--dim", "64", "--dim_mults", "1,2,4,8", "--precision", "bf16", "--device", "cuda",
                           "--steps", "60"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(done.stderr.strip()[-300:])
    return {"output": done.stdout.strip().splitlines()[-1][:200]}


STAGES = (environment, ddpm, resume, checkpoint_on_cpu, gans, classifier_dann, ddp_nccl, fid_features, sampling,
          device_masking, lucidrains)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (the test suite's run)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tuigen-gpu-check-") as folder:
        check = Check(Path(folder), args.device, args.tiny)
        try:
            for run_stage in STAGES:
                run_stage(check)
        finally:
            check.store.close()
    failed = [r["stage"] for r in RESULTS if r["status"] == "FAIL"]
    print(json.dumps({"device": args.device, "tiny": args.tiny, "seconds": round(time.perf_counter() - t0, 1),
                      "failed": failed, "stages": RESULTS}, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

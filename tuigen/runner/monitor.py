"""System samples for the live views: CPU and RSS of a run's process tree (psutil) and the
GPUs it uses (nvidia-ml-py). No GPU, no driver, or no permission simply means no GPU rows."""
from __future__ import annotations

import time

import psutil

from .process import tree


class _Nvml:
    """Lazily initialised NVML; `ok` is False wherever there is no usable NVIDIA driver."""

    def __init__(self) -> None:
        self.ok = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            self.ok = True
        except Exception:
            pass

    def count(self) -> int:
        try:
            return self.nv.nvmlDeviceGetCount() if self.ok else 0
        except Exception:
            return 0

    def sample(self, index: int) -> dict:
        nv = self.nv
        h = nv.nvmlDeviceGetHandleByIndex(index)
        out: dict = {"gpu_index": index}
        for name, read in (
            ("gpu_util", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)),
            ("gpu_mem_used", lambda: int(nv.nvmlDeviceGetMemoryInfo(h).used)),
            ("gpu_mem_total", lambda: int(nv.nvmlDeviceGetMemoryInfo(h).total)),
            ("gpu_temp", lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))),
            ("gpu_power", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
        ):
            try:  # some fields are unsupported on some boards; keep the rest
                out[name] = read()
            except Exception:
                out[name] = None
        return out

    def pids_on(self, index: int) -> set[int]:
        nv = self.nv
        try:
            h = nv.nvmlDeviceGetHandleByIndex(index)
            return {p.pid for p in nv.nvmlDeviceGetComputeRunningProcesses(h)}
        except Exception:
            return set()


_nvml: _Nvml | None = None


def nvml() -> _Nvml:
    global _nvml
    if _nvml is None:
        _nvml = _Nvml()
    return _nvml


def gpu_count() -> int:
    """The GPUs NVML sees (TUIGEN_FAKE_GPUS in tests)."""
    from ..settings import fake_gpus

    fake = fake_gpus()
    return nvml().count() if fake is None else fake


def local_gpus() -> list[str]:
    """The devices the local queue may hand out, as "cuda:<physical index or UUID>": every GPU
    NVML counts, narrowed by TUIGEN_GPUS or the user's CUDA_VISIBLE_DEVICES."""
    from ..settings import gpu_mask

    present = [str(i) for i in range(gpu_count())]
    mask = gpu_mask()
    if mask is None:
        return [f"cuda:{i}" for i in present]
    # indices must exist here; UUIDs (GPU-..., MIG-...) are the driver's to resolve
    return [f"cuda:{t}" for t in mask if t in present or (present and not t.isdigit())]


def gpu_indices(device: str, visible: str | None) -> list[int]:
    """The NVML indices of the GPUs a worker was given: the queue's "cuda:0,1", else the
    CUDA_VISIBLE_DEVICES a Slurm job gets. A UUID (a MIG slice) has no NVML index: left out."""
    spec = device[5:] if device.startswith("cuda:") else (visible or "")
    return [int(t) for t in spec.split(",") if t.strip().isdigit()]


class ProcessMonitor:
    """Samples one run's process tree and the GPUs that tree uses: those NVML lists its
    processes on, or, where none match (in a container NVML reports the host's process ids),
    every GPU the run was given."""

    def __init__(self, pid: int, run_id: int | None, gpu_hint: int | list[int] | None = None):
        self.pid, self.run_id = pid, run_id
        self.gpu_hint = [gpu_hint] if isinstance(gpu_hint, int) else list(gpu_hint or [])
        self._procs: dict[int, psutil.Process] = {}

    def sample(self) -> list[dict]:
        now = time.time()
        procs = tree(self.pid)
        cpu, rss = 0.0, 0
        for p in procs:
            known = self._procs.setdefault(p.pid, p)  # keep the object: cpu_percent needs its last call
            try:
                cpu += known.cpu_percent(None)
                rss += known.memory_info().rss
            except psutil.Error:
                pass
        base = {"run_id": self.run_id, "time": now, "cpu_percent": cpu, "rss_bytes": rss}
        rows = [base]
        nv = nvml()
        if nv.ok:
            pids = {p.pid for p in procs}
            used = [i for i in range(nv.count()) if nv.pids_on(i) & pids]
            if not used:
                used = [i for i in self.gpu_hint if i < nv.count()]
            for i in used:
                rows.append({"run_id": self.run_id, "time": now, **nv.sample(i)})
        return rows

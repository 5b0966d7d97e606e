"""Counting the calls that make the host wait for the GPU, step by step (a diagnostic).

On a GPU each of these reads a tensor's value on the host, so the CPU stops queueing work until
the GPU has caught up: `.item()`, `.tolist()`, `.cpu()`, `.numpy()`, `float()`, `int()`,
`bool()`. On the CPU nothing waits, but counting the same calls there tells what a GPU would
wait for. Only calls from tuigen's own code on the training thread are counted: the recorder
reads logged tensors on its own thread (how logging stays off the training path), and torch's
own reads on the CPU are of host-side values on a GPU too (Adam's step count). Not seen: the
one read per step of AMP's GradScaler in fp16 (its inf check), which torch makes on a GPU.

    TUIGEN_COUNT_SYNCS=1 tuigen run ...   logs host_syncs_per_step (median) and _mean at the end
"""
from __future__ import annotations

import statistics
import sys
import threading

SYNCING = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


def _called_from_tuigen() -> bool:
    caller = sys._getframe(2)  # 0: this function, 1: the counting wrapper, 2: who read the tensor
    return caller.f_globals.get("__name__", "").startswith("tuigen.")


class SyncCounter:
    """Patches torch.Tensor's host-reading methods to count calls on the thread that started it."""

    def __init__(self) -> None:
        self.count = 0
        self.per_step: dict[int, int] = {}
        self._originals: dict[str, object] = {}
        self._thread = threading.get_ident()

    def start(self) -> "SyncCounter":
        import torch

        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            self._originals[name] = original
            setattr(torch.Tensor, name, self._counting(original))
        return self

    def stop(self) -> None:
        import torch

        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)
        self._originals.clear()

    def _counting(self, original):
        def counted(tensor, *args, **kwargs):
            if threading.get_ident() == self._thread and _called_from_tuigen():
                self.count += 1
            return original(tensor, *args, **kwargs)
        return counted

    def summary(self) -> dict[str, float]:
        """The median count of a step (what a quiet step costs) and the mean (with the steps that log,
        evaluate or checkpoint)."""
        counts = list(self.per_step.values())
        if not counts:
            return {}
        return {"host_syncs_per_step": float(statistics.median(counts)),
                "host_syncs_per_step_mean": sum(counts) / len(counts)}

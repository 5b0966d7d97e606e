"""The context a data-parallel rank gives its kind's train(cfg, ctx) (see runner/ddp.py).

Every rank runs the same training loop. Rank 0 records (metrics, images, events, checkpoints)
like a one-process TorchContext; ranks > 0 record nothing (NullRecorder). All ranks agree
before each step whether to stop, so they stop at the same step and checkpoint together:
rank 0 writes the file with every rank's RNG state, so each resumes its own stream.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..store import Store
from ..trained import checkpoint as ckpt
from .context import TorchContext
from .recorder import NullRecorder

STOP_AGREE_EVERY = 10
ALONE_TIMEOUT = timedelta(hours=24)  # rank 0's previews and FID; a dead rank 0 ends the job sooner (torchrun)


class DistributedContext(TorchContext):
    """Rank 0: records for the run. The worker's own context samples the process tree."""

    def __init__(self, store: Store, run_id: int, run_dir: str | Path, cfg: Any, *, device: torch.device,
                 stop: threading.Event, stop_file: Path, rank: int, world_size: int, attempt: int | None = None):
        super().__init__(store, run_id, run_dir, cfg, device=device, stop=stop, attempt=attempt)
        self.rank, self.world_size = rank, world_size
        self._stop_file = stop_file  # the worker's way to ask (e.g. it alone got SIGUSR1 from Slurm)
        self._agreed_stop = False
        self._first_step: int | None = None  # where this attempt's loop starts (steps() sets it)
        # Ranks wait for rank 0's solo work on a gloo group of their own: the training group
        # (NCCL: a 10-minute watchdog by default) never sees the wait. Every rank creates it.
        self._waiting = dist.new_group(backend="gloo", timeout=ALONE_TIMEOUT)
        self._models: list[torch.nn.Module] = []
        self._monitor = None  # the worker samples CPU/RSS/GPUs of all ranks together

    # -- stopping: all ranks or none --------------------------------------------------
    @property
    def should_stop(self) -> bool:
        return self._agreed_stop  # the agreed flag, so every rank takes the same branch

    def _stop_now(self) -> bool:
        """Agreed every STOP_AGREE_EVERY steps (and before the first): the vote is a host sync,
        which a GPU should not pay every step; a stop then waits at most that many steps."""
        if self.step % STOP_AGREE_EVERY and self.step != self._first_step:
            return False
        asked = self._stop_requested.is_set() or self._stop_file.exists()
        flag = torch.tensor([int(asked)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # one rank asked = all stop before this step
        self._agreed_stop = bool(flag.item())
        return self._agreed_stop

    def accumulating(self, net, last: bool):
        return contextlib.nullcontext() if last else net.no_sync()

    def alone(self, work) -> None:
        try:
            if self.is_main:
                work()
        finally:
            wait_for_main(self._waiting)

    def steps(self, start: int, total: int):
        self._first_step = start
        return super().steps(start, total)

    # -- data parallel ----------------------------------------------------------------
    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        self._models.append(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)  # broadcasts rank 0's weights now

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        if len(batch) % self.world_size:
            raise ValueError(f"a batch of {len(batch)} cannot be split evenly over {self.world_size} processes; "
                             f"choose a --batch_size divisible by {self.world_size}")
        return batch[self.rank::self.world_size]

    def mean(self, value) -> float:
        return mean_over_ranks(value, self.device)

    def param_digest(self) -> str | None:
        """A hash of the wrapped models' parameters: equal on all ranks when DDP kept them in sync.
        (Not buffers: BatchNorm statistics are each rank's own until DDP broadcasts rank 0's.)"""
        return state_digest([p for m in self._models for p in m.parameters()]) if self._models else None

    # -- checkpoints ------------------------------------------------------------------
    def save_checkpoint(self, state: dict, step: int | None = None) -> Path | None:
        return super().save_checkpoint({**state, "rng_ranks": self._gather_rng()}, step)

    def _gather_rng(self) -> list[dict]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, ckpt.capture_rng())
        return out

    def _rng_state(self, state: dict) -> dict:
        ranks = state.get("rng_ranks")
        return ranks[self.rank] if ranks and len(ranks) == self.world_size else state["rng"]


class FollowerContext(NullRecorder, DistributedContext):
    """Ranks > 0: the same steps, stop decisions and checkpoint calls as rank 0, but no writes."""

    def set_total(self, total: int) -> None:
        self.total = total

    def save_checkpoint(self, state: dict, step: int | None = None) -> None:
        self._gather_rng()  # rank 0 writes the file, with this rank's RNG in it

    def _rewind_to(self, step: int) -> None:
        pass  # rank 0 drops the store's later metric points


def mean_over_ranks(value, device: torch.device) -> torch.Tensor:
    """The mean of `value` over all ranks (each rank's loss comes from its own shard: rank 0's
    alone would be a noisier, biased curve). A collective: every rank calls it at the same step."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device).detach().reshape(1).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t[0] / dist.get_world_size()  # a tensor: read when logged, off the training thread


def wait_for_main(group) -> None:
    """Every rank of `group` meets here; a barrier on a CPU (gloo) group is a host wait only."""
    dist.barrier(group=group)


def state_digest(tensors) -> str:
    """sha256 over the bytes of tensors, in order (e.g. a model's parameters())."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

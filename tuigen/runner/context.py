"""What an experiment kind's `run(cfg, ctx)` is given: logging, images, the step loop and the
stop flag (`Context`), plus the device and checkpoints for torch kinds (`TorchContext`).

Lives in the worker process. Torch is imported only when a TorchContext is made, so a
command run by `tuigen exec` starts without paying for it."""
from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterator

from ..settings import threads
from ..store import Store
from ..trained.device import pick_device
from .recorder import Recorder

KEEP_CHECKPOINTS = 3


class Context(Recorder):
    rank, world_size = 0, 1  # one process; runner/ddp.py's contexts train data-parallel

    def __init__(self, store: Store, run_id: int, run_dir: str | Path, cfg: Any, *,
                 gpu_hint: int | list[int] | None = None, stop: threading.Event | None = None, attempt: int | None = None):
        super().__init__(store, run_id, run_dir, gpu_hint=gpu_hint, attempt=attempt)
        self.cfg = cfg
        self.total: int | None = None
        self._stop_requested = stop or threading.Event()  # the worker's signal handlers set it
        self.syncs = None  # a SyncCounter while host syncs are counted

    @property
    def is_main(self) -> bool:
        """The process that records (rank 0); the others train in lockstep and record nothing."""
        return self.rank == 0

    # -- stopping -------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        """True once the run was asked to stop (SIGTERM/SIGINT): save a checkpoint and return."""
        return self._stop_requested.is_set()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _on_stale(self) -> None:
        self.request_stop()  # a newer attempt owns the run: this one stops at the next step

    def _stop_now(self) -> bool:
        """Checked once before each step; a data-parallel context makes its ranks agree here."""
        return self.should_stop

    def steps(self, start: int, total: int) -> Iterator[int]:
        """Yield step numbers start+1 .. total, with `ctx.step` set to the one being run.

        A stop request is honoured between steps, so when the loop ends early `ctx.step`
        is the last completed step: the one to checkpoint."""
        self.set_total(total)
        self.step = start
        for s in range(start + 1, total + 1):
            syncs_before = self.syncs.count if self.syncs else 0
            if self._stop_now():
                return
            self.step = s
            yield s
            if self.syncs:  # the step's calls, from its stop check to its last line
                self.syncs.per_step[s] = self.syncs.count - syncs_before

    def count_syncs(self) -> None:
        """Count host syncs per step from here on (TUIGEN_COUNT_SYNCS=1; runner/syncs.py); the
        counts are logged when the run closes."""
        from .syncs import SyncCounter

        self.syncs = SyncCounter().start()

    def close(self, retry_s: float | None = None) -> None:
        if self.syncs:
            self.syncs.stop()
            summary = self.syncs.summary()
            if summary:
                self.log(summary, self.step)
                self.event(f"host syncs per step: median {summary['host_syncs_per_step']:g}, "
                           f"mean {summary['host_syncs_per_step_mean']:.2f} over {len(self.syncs.per_step)} steps")
        super().close(retry_s)

    def set_total(self, total: int) -> None:
        self.total = total
        self.update_run(total_steps=total)


class TorchContext(Context):
    """A Context with the run's torch device and atomic, resumable checkpoints."""

    def __init__(self, store: Store, run_id: int, run_dir: str | Path, cfg: Any, *,
                 device: Any = None, gpu_hint: int | list[int] | None = None, stop: threading.Event | None = None,
                 attempt: int | None = None):
        super().__init__(store, run_id, run_dir, cfg, gpu_hint=gpu_hint, stop=stop, attempt=attempt)
        self.device = device or pick_device(getattr(cfg, "device", "auto"))
        self.checkpoint_dir = self.run_dir / "checkpoints"

    # -- data parallel: identity here, DDP in runner/ddp.py -----------------------------
    def wrap_model(self, model):
        """The module to run forward/backward through (DistributedDataParallel when several
        processes train); keep the unwrapped one for state_dict, EMA and sampling."""
        return model

    def shard(self, batch):
        """This process's share of a batch drawn identically on every process."""
        return batch

    def mean(self, value):
        """A number to log (e.g. the loss), averaged over the processes that train together.
        Every process must call it at the same step. A tensor stays a tensor (a copy, so the
        caller may reset its own): the recorder reads it off the training thread."""
        return value.detach().clone() if hasattr(value, "detach") else float(value)

    def accumulating(self, net, last: bool):
        """Around a micro-batch's forward and backward: under DDP all but the last skip the
        gradient all-reduce (`no_sync`), so accumulating grad_steps costs one all-reduce."""
        return contextlib.nullcontext()

    def alone(self, work) -> None:
        """Run `work()` on the recording process only (previews, periodic FID); data-parallel
        ranks wait for it where no collective can time out."""
        work()

    # -- checkpoints ----------------------------------------------------------------
    def save_checkpoint(self, state: dict, step: int | None = None) -> Path:
        """Write state (with RNG states and the step added) atomically as ckpt-<step>.pt;
        keep the newest few."""
        from ..trained import checkpoint as ckpt

        step = self.step if step is None else step
        self.try_flush()  # metrics up to this step reach the store before the checkpoint claims them
        state = {**state, "step": step, "rng": ckpt.capture_rng()}
        path = ckpt.save_atomic(state, self.checkpoint_dir / f"ckpt-{step:07d}.pt")
        old = self._prune_checkpoints()

        def record() -> None:  # saved again at the same step: one row, the new file
            gone = {str(path), *map(str, old)}
            self.store.remove_artifacts([a.id for a in self.store.artifacts(self.run_id, kind="checkpoint")
                                         if a.path in gone])
            self.store.add_artifact(self.run_id, "checkpoint", path, key="checkpoint", step=step)

        self._later("artifact", record)
        return path

    def _prune_checkpoints(self) -> list[Path]:
        """Delete all but the newest KEEP_CHECKPOINTS checkpoint files; the deleted paths."""
        old = sorted(self.checkpoint_dir.glob("ckpt-*.pt"), key=_step_of)[:-KEEP_CHECKPOINTS]
        for p in old:
            p.unlink(missing_ok=True)
        return old

    def latest_checkpoint(self) -> Path | None:
        found = sorted(self.checkpoint_dir.glob("ckpt-*.pt"), key=_step_of)
        return found[-1] if found else None

    def load_checkpoint(self, path: str | Path | None = None) -> dict | None:
        """The latest checkpoint's state (RNG restored), or None for a fresh run.

        Resuming rewinds the run to the checkpoint's step: metric points logged after it
        are dropped, because the steps after it will be run and logged again.
        """
        from ..files import clean_temp_files
        from ..trained import checkpoint as ckpt

        if self.checkpoint_dir.exists():
            clean_temp_files(self.checkpoint_dir)
        path = Path(path) if path else self.latest_checkpoint()
        if path is None:
            return None
        state = ckpt.load(path, map_location=self.device)
        step = int(state["step"])
        ckpt.restore_rng(_to_cpu(self._rng_state(state)))
        self.step = step
        self._rewind_to(step)
        return state

    def _rng_state(self, state: dict) -> dict:
        return state["rng"]

    def _rewind_to(self, step: int) -> None:
        def rewind() -> None:  # queued before any point of this attempt, so it never drops one
            dropped = self.store.truncate_metrics(self.run_id, after_step=step)
            self.store.truncate_scores(self.run_id, after_step=step)  # scored again as the steps are run again
            self.store.add_event(self.run_id, f"resumed from checkpoint at step {step}"
                                 + (f" ({dropped} later points replaced)" if dropped else ""))

        self._later("rewind", rewind)


def _step_of(p: Path) -> int:
    m = re.search(r"(\d+)", p.stem)
    return int(m.group(1)) if m else -1


def _to_cpu(rng: dict) -> dict:
    """RNG states must be CPU byte tensors even when the checkpoint was mapped to a GPU."""
    out = dict(rng)
    out["torch"] = rng["torch"].cpu()
    if "cuda" in rng:
        out["cuda"] = [t.cpu() for t in rng["cuda"]]
    return out


def threads_for_worker() -> int:
    return threads() or os.cpu_count() or 1

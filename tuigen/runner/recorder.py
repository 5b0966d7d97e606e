"""Recording a run from inside the process that executes it.

Shared by the worker (built-in kinds) and `tuigen.init` (any script). The training loop never
waits on the store: `log`, `event`, `log_image`, ... only append to an ordered outbox, and a
background thread writes it in batches every second (sooner when many points wait), heartbeats,
and samples the process tree's CPU/RSS and GPUs.

A busy store (another process holding SQLite's lock past the busy timeout, a PostgreSQL server
briefly out of reach) only delays those writes: the outbox keeps them, in order, and the
thread retries. Past MAX_PENDING_POINTS the oldest unsent points are dropped and counted. When
the store answers again, one event says how long it was busy and what was held or dropped.
A store that cannot be written at all (its disk is full, it is damaged) is different: the next
`log` raises that error, so the run stops with it instead of training on unrecorded.

Every write of a worker is for one attempt of its run (`attempt`): once a newer attempt owns
the run (a resume, a requeued Slurm job), this recorder stops writing and asks its run to stop.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Mapping

from ..config import MAX_INT, whole_number
from ..files import write_text
from ..store import StaleAttempt, Store, StoreBusy, StoreError
from ..viz.images import save_png
from .monitor import ProcessMonitor

FLUSH_EVERY_S = 1.0  # a point reaches the store (and the TUI) within about this long
FLUSH_AT_POINTS = 2000  # ... or as soon as this many wait
HEARTBEAT_S = 5.0
SYSTEM_SAMPLE_S = 5.0
MAX_PENDING_POINTS = 500_000  # about 60 MB of points held while the store is busy
MAX_STEP = MAX_INT


class Recorder:
    def __init__(self, store: Store, run_id: int, run_dir: str | Path, *, gpu_hint: int | list[int] | None = None,
                 attempt: int | None = None):
        self.store, self.run_id, self.run_dir = store, run_id, Path(run_dir)
        self.attempt = attempt
        self.step = 0
        self._buf: list[tuple] = []  # (key, step, value, wall time); value a float, or a tensor to read later
        self._outbox: deque[tuple[str, Callable[[], Any], int]] = deque()  # (what, write, points in it)
        self._pending_points = 0
        self._lock = threading.Lock()  # guards _buf, _outbox, _pending_points
        self._drain_lock = threading.Lock()  # one writer at a time, so the outbox stays in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._warned: set[str] = set()
        self._busy_since: float | None = None
        self._dropped_points = 0
        self._stale = False
        self._failed: StoreError | None = None  # a write error that waiting will not cure
        self._monitor = ProcessMonitor(os.getpid(), run_id, gpu_hint)
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._background, name="tuigen-recorder", daemon=True)
        self._thread.start()

    def close(self, retry_s: float | None = None) -> None:
        """Stop the thread and write what is left, retrying a busy store for up to `retry_s`
        (TUIGEN_STORE_RETRY, an hour by default): a run's last points are worth waiting for."""
        from ..settings import store_retry_s

        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)
        deadline = time.monotonic() + (store_retry_s() if retry_s is None else retry_s)
        while True:
            try:
                self.flush()
                return
            except StoreBusy:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    def _background(self) -> None:
        next_beat = next_sample = 0.0
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            try:
                self._drain()
                if now >= next_beat:
                    next_beat = now + HEARTBEAT_S
                    if self.store.heartbeat(self.run_id, attempt=self.attempt):
                        self.event("heartbeats arrive again: running")
                if self._monitor and now >= next_sample:  # None: another process samples
                    next_sample = now + SYSTEM_SAMPLE_S
                    self.store.add_system_samples(self._monitor.sample())
            except StaleAttempt as e:
                self._go_stale(str(e))
                return
            except StoreBusy:
                pass  # _drain noted it; everything is kept and tried again next time
            except StoreError as e:  # disk full, damaged: the training loop hears of it at its next log
                self._failed = e
            except Exception as e:  # anything else must not kill training
                print(f"tuigen: background write failed, will retry: {e}", flush=True)

    # -- the outbox ------------------------------------------------------------------
    def _later(self, what: str, write: Callable[[], Any]) -> None:
        """Queue a store write after everything logged so far."""
        if self._stale:
            return
        with self._lock:
            self._seal_points()
            self._outbox.append((what, write, 0))
        self._wake.set()

    def _seal_points(self) -> None:
        """(Under _lock.) Turn the buffered points into one ordered write."""
        if not self._buf:
            return
        points, self._buf = self._buf, []
        self._outbox.append(("points", lambda: self._write_points(points), len(points)))
        self._pending_points += len(points)
        while self._pending_points > MAX_PENDING_POINTS and self._drop_oldest_points():
            pass

    def _drop_oldest_points(self) -> bool:
        """(Under _lock.) Forget the oldest unsent batch of points (not one being written now)."""
        first = 1 if self._drain_lock.locked() else 0
        for i in range(first, len(self._outbox)):
            if self._outbox[i][2]:
                self._pending_points -= self._outbox[i][2]
                self._dropped_points += self._outbox[i][2]
                del self._outbox[i]
                return True
        return False

    def flush(self) -> None:
        """Write everything logged so far, now. Raises StoreError (StoreBusy when the store is
        busy) with nothing lost: what could not be written stays for the next try."""
        with self._lock:
            self._seal_points()
        self._drain()

    def try_flush(self) -> bool:
        """flush(), but a busy store is not an error: False, and the writes wait."""
        try:
            self.flush()
            return True
        except StoreBusy:
            return False

    def _drain(self) -> None:
        with self._drain_lock:
            with self._lock:
                self._seal_points()
            while True:
                with self._lock:
                    if not self._outbox:
                        break
                    what, write, n = self._outbox[0]
                try:
                    write()
                except StoreBusy:
                    if self._busy_since is None:
                        self._busy_since = time.monotonic()
                        print("tuigen: the store is busy; training goes on, writes wait", flush=True)
                    raise
                with self._lock:
                    if self._outbox and self._outbox[0][1] is write:
                        self._outbox.popleft()
                        self._pending_points -= n
            if self._busy_since is not None:
                self._store_was_busy(time.monotonic() - self._busy_since)

    def _store_was_busy(self, seconds: float) -> None:
        self._busy_since = None
        dropped, self._dropped_points = self._dropped_points, 0
        message = f"the store was busy for {seconds:.1f} s; training went on and its writes waited"
        if dropped:
            message += f"; {dropped} of the oldest points could not be kept and were dropped"
        self.store.add_event(self.run_id, message, "warning")

    def _go_stale(self, why: str) -> None:
        """A newer attempt owns the run: write nothing more, and stop this one."""
        self._stale = True
        with self._lock:
            self._buf.clear()
            self._outbox.clear()
        print(f"tuigen: {why}; this worker stops without writing more", flush=True)
        self._on_stale()

    def _on_stale(self) -> None:
        """What a stale writer does besides going quiet (a run context asks its loop to stop)."""

    # -- metrics --------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record scalar metrics at `step` (default: the current step). Values may be tensors:
        they are read in the background, so logging never makes the CPU wait for a GPU."""
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        if step is None:
            step = self.step
        elif type(step) is not int or not -MAX_STEP <= step <= MAX_STEP:
            checked = whole_number(step)
            if checked is None:
                self._warn_once("step", f"step {step!r} is not a whole number the store can hold "
                                        f"(|step| <= {MAX_STEP}); those points were skipped")
                return
            step = checked
        now = time.time()
        with self._lock:
            buf = self._buf
            for k, v in metrics.items():  # (floats, the common case, skip the conversion)
                buf.append((k, step, v if type(v) is float else _value(k, v), now))
            due = len(buf) >= FLUSH_AT_POINTS
        if due:
            self._wake.set()

    def _write_points(self, points: list[tuple]) -> None:
        rows = [p if type(p[2]) is float else (p[0], p[1], _read(p[2]), p[3]) for p in points]
        dropped = self.store.log_metrics(self.run_id, rows, attempt=self.attempt)
        if dropped:
            for k in sorted({r[0] for r in rows if math.isnan(r[2])}):
                first = min(r[1] for r in rows if r[0] == k)
                self._warn_once(f"nan:{k}", f"metric '{k}' was NaN (first at step {first}); NaN points are not stored")

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            self.event(message, "warning")

    # -- pictures, files, events, scores ----------------------------------------------
    def log_image(self, key: str, image: Any, step: int | None = None, *, nrow: int | None = None,
                  meta: dict | None = None, value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
        """Save an image (or a batch as a grid) as images/<key>-<step>.png and record it. Float
        pixels are read in `value_range` (default (0, 1), as torchvision's save_image; tuigen's
        own models pass (-1, 1)); uint8 pixels as they are."""
        step = self.step if step is None else int(step)
        path = save_png(image, self.run_dir / "images" / f"{_file_name(key)}-{step:07d}.png", nrow=nrow,
                        value_range=value_range)
        self._later("artifact", lambda: self.store.add_artifact(self.run_id, "image", path, key=key, step=step,
                                                                meta=meta))
        return path

    def log_artifact(self, kind: str, path: str | Path, *, key: str = "", step: int | None = None,
                     meta: dict | None = None) -> None:
        """Record a file the run wrote itself (a plot, a table, a sample set)."""
        step = self.step if step is None else step
        self._later("artifact", lambda: self.store.add_artifact(self.run_id, kind, path, key=key, step=step,
                                                                meta=meta))

    def log_text(self, key: str, text: str, step: int | None = None) -> Path:
        """Save a text artifact (e.g. the model's architecture summary) as <key>.txt."""
        path = write_text(self.run_dir / f"{_file_name(key)}.txt", text)

        def record() -> None:  # one current version per key
            self.store.remove_artifacts([a.id for a in self.store.artifacts(self.run_id, kind="text", key=key)])
            self.store.add_artifact(self.run_id, "text", path, key=key, step=step)

        self._later("artifact", record)
        return path

    def event(self, message: str, level: str = "info") -> None:
        self._later("event", lambda: self.store.add_event(self.run_id, message, level))

    def add_score(self, metric: str, value: float, provenance: dict, *, std: float | None = None,
                  step: int | None = None) -> None:
        """Store an evaluation of this run (FID during training) with its provenance."""
        self._later("score", lambda: self.store.add_score(self.run_id, metric, value, provenance, std=std,
                                                          step=step))

    def update_run(self, **fields: Any) -> None:
        """Set fields of the run (e.g. total_steps), for this attempt only."""
        self._later("run", lambda: self.store.update_run(self.run_id, attempt=self.attempt, **fields))


class NullRecorder(Recorder):
    """Records nothing. Mixed into the contexts of ranks > 0 of a data-parallel run: they
    train in lockstep with rank 0, which records metrics, images and events for all."""

    def start(self) -> None:
        pass

    def close(self, retry_s: float | None = None) -> None:
        pass

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

    def _later(self, what: str, write: Callable[[], Any]) -> None:
        pass

    def log_image(self, key: str, image: Any, step: int | None = None, **_) -> None:
        return None

    def log_text(self, key: str, text: str, step: int | None = None) -> None:
        return None


def _file_name(key: str) -> str:
    """A metric or artifact key made safe as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _value(key: str, v: Any) -> Any:
    """A metric value as logged: a float now, or a tensor read later (no GPU sync per step)."""
    if hasattr(v, "detach") and hasattr(v, "item"):  # a torch tensor: keep it, read it in the background
        if v.numel() != 1:
            raise TypeError(f"metric '{key}' must be a single number, got a tensor of shape {tuple(v.shape)}")
        return v.detach()
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if not isinstance(v, (int, float)):
        raise TypeError(f"metric '{key}' must be a number, got {type(v).__name__}")
    return float(v)


def _read(v: Any) -> float:
    return float(v.item())

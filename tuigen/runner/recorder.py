"""Recording a run from inside the process that executes it.

Shared by the worker (built-in kinds) and `tuigen.init` (any script): metric points are
buffered and written in batches; a background thread flushes, heartbeats and samples the
process tree's CPU/RSS and GPUs every few seconds.
"""
from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ..files import write_text
from ..store import Store
from ..viz.images import save_png
from .monitor import ProcessMonitor

FLUSH_EVERY_S = 1.0  # a point reaches the store (and the TUI) within about this long
FLUSH_AT_POINTS = 2000
HEARTBEAT_S = 5.0
SYSTEM_SAMPLE_S = 5.0


class Recorder:
    def __init__(self, store: Store, run_id: int, run_dir: str | Path, *, gpu_hint: int | None = None):
        self.store, self.run_id, self.run_dir = store, run_id, Path(run_dir)
        self.step = 0
        self._buf: list[tuple[str, int, float, float]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._nan_warned: set[str] = set()
        self._stop = threading.Event()
        self._monitor = ProcessMonitor(os.getpid(), run_id, gpu_hint)
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._background, name="tuigen-recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self.flush()

    def _background(self) -> None:
        next_sample = 0.0
        while not self._stop.wait(min(FLUSH_EVERY_S, HEARTBEAT_S)):
            try:
                self.flush()
                if self.store.heartbeat(self.run_id):
                    self.event("heartbeats arrive again: running")
                if self._monitor and time.monotonic() >= next_sample:  # None: another process samples
                    next_sample = time.monotonic() + SYSTEM_SAMPLE_S
                    self.store.add_system_samples(self._monitor.sample())
            except Exception as e:  # a busy or briefly unreachable store must not kill training
                print(f"tuigen: background write failed, will retry: {e}", flush=True)

    # -- metrics --------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record scalar metrics at `step` (default: the current step)."""
        step = self.step if step is None else int(step)
        now = time.time()
        with self._lock:
            buf = self._buf
            for k, v in metrics.items():  # (floats, the common case, skip the conversion)
                buf.append((k, step, v if type(v) is float else _scalar(k, v), now))
            due = len(self._buf) >= FLUSH_AT_POINTS or time.monotonic() - self._last_flush >= FLUSH_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            points, self._buf = self._buf, []
            self._last_flush = time.monotonic()
            if not points:
                return
            try:
                dropped = self.store.log_metrics(self.run_id, points)
            except Exception:
                self._buf = points + self._buf  # keep them for the next try
                raise
        if not dropped:
            return
        for k in {p[0] for p in points if math.isnan(p[2])} - self._nan_warned:
            self._nan_warned.add(k)
            self.event(f"metric '{k}' was NaN (first at step {min(p[1] for p in points if p[0] == k)}); "
                       "NaN points are not stored", "warning")

    # -- pictures and events --------------------------------------------------------
    def log_image(self, key: str, image: Any, step: int | None = None, *, nrow: int | None = None,
                  meta: dict | None = None, value_range: tuple[float, float] = (0.0, 1.0)) -> Path:
        """Save an image (or a batch as a grid) as images/<key>-<step>.png and record it. Float
        pixels are read in `value_range` (default (0, 1), as torchvision's save_image; tuigen's
        own models pass (-1, 1)); uint8 pixels as they are."""
        step = self.step if step is None else int(step)
        path = save_png(image, self.run_dir / "images" / f"{_file_name(key)}-{step:07d}.png", nrow=nrow,
                        value_range=value_range)
        self.store.add_artifact(self.run_id, "image", path, key=key, step=step, meta=meta)
        return path

    def log_artifact(self, kind: str, path: str | Path, *, key: str = "", step: int | None = None,
                     meta: dict | None = None) -> int:
        """Record a file the run wrote itself (a plot, a table, a sample set)."""
        return self.store.add_artifact(self.run_id, kind, path, key=key, step=self.step if step is None else step,
                                       meta=meta)

    def log_text(self, key: str, text: str, step: int | None = None) -> Path:
        """Save a text artifact (e.g. the model's architecture summary) as <key>.txt."""
        path = write_text(self.run_dir / f"{_file_name(key)}.txt", text)
        old = [a.id for a in self.store.artifacts(self.run_id, kind="text", key=key)]
        self.store.remove_artifacts(old)  # one current version per key
        self.store.add_artifact(self.run_id, "text", path, key=key, step=step)
        return path

    def event(self, message: str, level: str = "info") -> None:
        self.store.add_event(self.run_id, message, level)

    def add_score(self, metric: str, value: float, provenance: dict, *, std: float | None = None,
                  step: int | None = None) -> None:
        """Store an evaluation of this run (FID during training) with its provenance."""
        self.store.add_score(self.run_id, metric, value, provenance, std=std, step=step)


class NullRecorder(Recorder):
    """Records nothing. Mixed into the contexts of ranks > 0 of a data-parallel run: they
    train in lockstep with rank 0, which records metrics, images and events for all."""

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

    def log_image(self, key: str, image: Any, step: int | None = None, **_) -> None:
        return None

    def log_artifact(self, kind: str, path: str | Path, **_) -> None:
        return None

    def log_text(self, key: str, text: str, step: int | None = None) -> None:
        return None

    def event(self, message: str, level: str = "info") -> None:
        pass

    def add_score(self, metric: str, value: float, provenance: dict, **_) -> None:
        pass


def _file_name(key: str) -> str:
    """A metric or artifact key made safe as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _scalar(key: str, v: Any) -> float:
    if hasattr(v, "item"):  # torch / numpy scalars
        v = v.item()
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"metric '{key}' must be a number, got {type(v).__name__}") from None

"""What the screens show, read from the store in worker threads (never on the UI thread).

Runs are polled incrementally: new ids, plus runs that were active last time (the only ones
whose rows can change), with a full resync every few polls to pick up deletes and resumes
made by other processes.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..display import group_label
from ..experiments import KINDS
from ..reports.run_score import run_scores
from ..runner.demo import DEMO_TAG, demo_status
from ..runner.logs import log_path, read_from
from ..store import ACTIVE

if TYPE_CHECKING:
    from ..store import Store

FULL_SYNC_EVERY = 10
FIRST_PAINT = 100  # rows read before the table is first drawn
CURVE_POINTS = 600  # points a curve is drawn with at most: a braille plot 300 columns wide has as many dots


@dataclass
class RunRow:
    id: int
    name: str
    kind: str
    dataset: str
    status: str
    step: int
    total: int | None
    loss: float | None
    score_label: str
    score: float | None
    started_at: float | None
    ended_at: float | None
    where: str
    tags: str
    parent_id: int | None
    group: str = ""  # the sweep it belongs to, or its study and trial


@dataclass
class RunsSnapshot:
    rows: list[RunRow]
    gone: list[int]  # runs deleted since the last resync
    partial: bool = False  # only the newest runs: poll again at once
    demo: str = ""  # what `tuigen demo` is doing ("demo: 4 of 8 done, about 1 min left"), or ""
    polled_at: float = field(default_factory=time.time)


class RunsPoller:
    """Keeps track of which runs can still change, so each poll reads only those.

    A normal poll reads new runs and the active ones. Every FULL_SYNC_EVERY polls a resync
    scans only (id, status) of all runs, to notice deletes and resumes made elsewhere, and
    refetches just the runs whose status changed."""

    def __init__(self, store: Store | Callable[[], Store], first_paint: Callable[[], Any] | None = None):
        """`store` may be a callable that opens it, called at the first poll that needs it;
        `first_paint` may give a lighter reader of the same store (store/first_paint.py) for
        the first poll, so the first frame does not wait for the store to open."""
        self._store = store
        self._first_paint = first_paint
        self.max_id = 0
        self.active: set[int] = set()
        self.known: dict[int, str] = {}
        self.polls = 0
        self.demo = False  # a demo run was seen: only then is the demo's status read

    @property
    def store(self) -> Store:
        return self._store() if callable(self._store) else self._store

    def poll(self) -> RunsSnapshot:
        first = self.polls == 0
        resync = self.polls % FULL_SYNC_EVERY == 1  # the poll right after the first paint, then every 10th
        self.polls += 1
        gone: list[int] = []
        if first:  # paint the newest screenful at once; the resync that follows brings the rest
            runs, rows = self._first_rows()
        else:
            if resync:
                statuses = self.store.run_statuses()
                gone = [i for i in self.known if i not in statuses]
                changed = {i for i, st in statuses.items() if self.known.get(i) != st} | self.active
                runs = self.store.run_rows(ids=sorted(i for i in changed if i in statuses)) if changed else []
            else:
                runs = self.store.run_rows(after_id=self.max_id, ids=sorted(self.active))
            rows = _rows(self.store, runs)
        for i in gone:
            self.known.pop(i, None)
            self.active.discard(i)
        for r in runs:
            self.max_id = max(self.max_id, r.id)
            self.known[r.id] = r.status
            (self.active.add if r.status in ACTIVE else self.active.discard)(r.id)
            self.demo |= DEMO_TAG in r.tags.split(",")
        status = demo_status(self.store, time.time()) if self.demo and not first else None
        return RunsSnapshot(rows, gone, partial=first, demo=status.text if status else "")

    def _first_rows(self) -> tuple[list, list[RunRow]]:
        reader = self._first_paint() if self._first_paint else None
        if reader is not None:
            try:
                runs = reader.run_rows(limit=FIRST_PAINT, newest_first=True)
                return runs, _rows(reader, runs)
            except Exception:  # noqa: BLE001 - any surprise: the full store reads it instead
                pass
            finally:
                reader.close()
        runs = self.store.run_rows(limit=FIRST_PAINT, newest_first=True)
        return runs, _rows(self.store, runs)


def _rows(store, runs) -> list[RunRow]:
    """The table's rows of these runs, from the Store or the first paint's reader."""
    ids = [r.id for r in runs]
    summaries, scores = store.summary_rows(ids), run_scores(store, ids)
    studies = store.studies_of([r.id for r in runs if r.study_id]) if any(r.study_id for r in runs) else {}
    return [_row(r, summaries.get(r.id, {}), scores.get(r.id), studies) for r in runs]


def _row(run, summary: dict, score, studies: dict | None = None) -> RunRow:
    kind = KINDS.get(run.kind)
    metric = summary.get(kind.progress_metric if kind else "loss") or summary.get("loss")
    label, value = (score.label, score.value) if score else ("", None)
    where = " ".join(x for x in (run.host, run.device) if x) or run.executor
    return RunRow(run.id, run.name, run.kind, run.dataset, run.status, run.step or 0, run.total_steps,
                  metric.last if metric else None, label, value, run.started_at, run.ended_at, where, run.tags,
                  run.parent_id, group_label(run.sweep_id, (studies or {}).get(run.study_id), run.trial_number))


@dataclass
class RunDetail:
    run: Any
    config: dict
    points: list  # new MetricPoints since the last poll
    last_point_id: int
    events: list
    artifacts: list
    system: list
    log_text: str
    log_offset: int
    model_summary: str


def run_detail(store: Store, run_id: int, after_id: int, log_offset: int | None, since: float) -> RunDetail:
    """What the run screen shows that is new since its last poll (log_offset None: the first)."""
    run = store.get_run(run_id)
    if after_id:  # a live run's new points, whole
        points = store.metrics(run_id, after_id=after_id)
        newest = points[-1].id if points else after_id
    else:  # the first poll: every curve, reduced to what a plot can show
        points, newest = store.metric_curves(run_id, CURVE_POINTS)
    arts = store.artifacts(run_id)
    summary = next((Path(a.path) for a in arts if a.kind == "text" and a.key == "model_summary"), None)
    log_text, offset = read_from(log_path(run.run_dir), log_offset)
    return RunDetail(run, json.loads(run.config or "{}"), points, newest,
                     store.events(run_id), arts, store.system_samples(run_id, since=since), log_text, offset,
                     summary.read_text() if summary and summary.is_file() else "")

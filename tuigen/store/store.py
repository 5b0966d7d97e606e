"""The one way tuigen reads and writes its store.

Writes are short transactions (BEGIN IMMEDIATE on SQLite); metric points arrive in batches
and update the per-run summary in the same transaction, so listings and leaderboards read
`metric_summary` and never scan `metrics`.
"""
from __future__ import annotations

import json
import math
import shutil
import time
import uuid as uuidlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import case, delete, func, insert, literal, or_, select, union_all, update
from sqlalchemy.orm import Session

from sqlalchemy.exc import DBAPIError

from ..errors import TuigenError
from . import tables as m
from .engine import WRITE, display_url, explain, is_busy, make_engine, resolve_url, runs_root, serialize, upsert_insert
from .identity import HOST, RunFolderError, claim_folder, current_user, folder_name, marker_problem
from .migrate import upgrade


@dataclass(frozen=True)
class MetricPoint:
    id: int
    key: str
    step: int
    value: float
    wall_time: float | None  # None for a point metric_curves reduced from many


class RunNotFound(LookupError):
    pass


class StudyNotFound(LookupError):
    pass


class StoreError(TuigenError):
    """The store itself cannot be used (damaged, locked past the busy timeout, disk full)."""


class StoreBusy(StoreError):
    """Another process holds the store's lock past the busy timeout, or the server is briefly
    unreachable: worth retrying later (a running run keeps training meanwhile)."""


class StaleAttempt(StoreError):
    """A worker wrote for an attempt of its run that a newer start has replaced: it must stop."""


def _slots_taken(run: m.Run, slots: int, gpus: bool) -> int:
    """How many local slots a run occupies: its GPUs on a GPU host, its processes on a CPU one
    (at most all of them, so an oversized request still runs alone rather than never)."""
    try:
        res = json.loads(run.resources or "{}")
    except ValueError:
        res = {}
    want = res.get("gpus") if gpus else res.get("processes")
    return min(slots, want) if isinstance(want, int) and want > 1 else 1


def _device_asked(run: m.Run) -> str:
    """The `device` a run's config names ("auto" when it names none): cuda:N is a physical GPU."""
    try:
        asked = json.loads(run.config or "{}").get("device")
    except (ValueError, AttributeError):
        asked = None
    return asked if isinstance(asked, str) and asked else "auto"


def _metric_insert_sql(conn) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"  # sqlite3 | psycopg
    return f"INSERT INTO metrics (run_id, key, step, value, wall_time) VALUES ({', '.join([mark] * 5)})"


def provenance_key(metric: str, provenance: dict) -> str:
    """A short stable hash of what makes two scores comparable."""
    import hashlib

    text = json.dumps({"metric": metric, **provenance}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Store:
    """A tuigen store at a database URL, its run folders under `runs_root`."""

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        self.url = resolve_url(url)
        self.safe_url = display_url(self.url)  # for messages: never the password
        self._store_id: str | None = None
        self.engine = make_engine(self.url)
        self._writer = self.engine.execution_options(**WRITE)
        self.runs_root = runs_root(self.url)
        if migrate:
            with self._explained():
                upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._explained(), Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """A damaged, locked or full store becomes a StoreError naming the file."""
        try:
            yield
        except DBAPIError as e:
            message = explain(self.url, e)
            if message is None:
                raise
            raise (StoreBusy if is_busy(self.url, e) else StoreError)(message) from e

    # -- runs -----------------------------------------------------------------------
    @property
    def store_id(self) -> str:
        """This store's UUID (made by the migration that introduced it), which run markers name."""
        if self._store_id is None:
            with self.read() as s:
                self._store_id = s.scalar(select(m.StoreMeta.value).where(m.StoreMeta.key == "store_id"))
        return self._store_id

    def create_run(self, kind: str, config: dict | str, *, name: str = "", dataset: str = "",
                   tags: Sequence[str] = (), project: str = "", parent_id: int | None = None,
                   sweep_id: int | None = None, executor: str = "local", status: str = m.QUEUED,
                   command: str | None = None, total_steps: int | None = None,
                   resources: dict | None = None, study_id: int | None = None,
                   trial_number: int | None = None) -> m.Run:
        """Record a run and make its folder, runs/<id>-<uuid8>, with the marker that ties it to
        this store and run. A path that already exists is never adopted: another uuid is drawn."""
        cfg_text = config if isinstance(config, str) else json.dumps(config)
        with self.write() as s:
            run = m.Run(kind=kind, name=name, dataset=dataset, config=cfg_text, tags=",".join(tags),
                        project=project, parent_id=parent_id, sweep_id=sweep_id, executor=executor,
                        study_id=study_id, trial_number=trial_number,
                        status=status, command=command, created_at=time.time(), host="", device="",
                        step=0, total_steps=total_steps, run_dir="", resources=json.dumps(resources or {}),
                        uuid=str(uuidlib.uuid4()), attempt=0, launched_by=current_user(), launched_on=HOST)
            s.add(run)
            s.flush()
            run.name = run.name or f"{kind}-{run.id}"
            for _ in range(8):
                path = self.runs_root / folder_name(run.id, run.uuid)
                if claim_folder(path, self.store_id, run.id, run.uuid):
                    break
                run.uuid = str(uuidlib.uuid4())
            else:
                raise RunFolderError(f"could not make a new folder for run {run.id} under {self.runs_root}")
            run.run_dir = str(path)
        return run

    def folder_problem(self, run: m.Run) -> str | None:
        """Why tuigen must not act on this run's folder, or None when it is the run's own."""
        return marker_problem(run.run_dir, self.store_id, run.id, run.uuid)

    def check_folder(self, run: m.Run) -> Path:
        """The run's folder, or RunFolderError naming it when it is not this run's."""
        problem = self.folder_problem(run)
        if problem:
            raise RunFolderError(f"{problem}; tuigen will not use it (see the run with tuigen show {run.id})")
        return Path(run.run_dir)

    def get_run(self, run_id: int) -> m.Run:
        with self.read() as s:
            run = s.get(m.Run, run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id} in {self.safe_url}")
        return run

    def list_runs(self, *, kind: str | None = None, status: Sequence[str] | str | None = None,
                  dataset: str | None = None, tag: str | None = None, project: str | None = None,
                  sweep_id: int | None = None, executor: str | None = None, limit: int | None = None,
                  newest_first: bool = True, study_id: int | None = None) -> list[m.Run]:
        q = select(m.Run)
        if kind:
            q = q.where(m.Run.kind == kind)
        if executor:
            q = q.where(m.Run.executor == executor)
        if status:
            q = q.where(m.Run.status.in_([status] if isinstance(status, str) else list(status)))
        if dataset:
            q = q.where(m.Run.dataset == dataset)
        if project:
            q = q.where(m.Run.project == project)
        if sweep_id is not None:
            q = q.where(m.Run.sweep_id == sweep_id)
        if study_id is not None:
            q = q.where(m.Run.study_id == study_id)
        if tag:  # tags are comma-separated; match a whole tag
            t = m.Run.tags
            q = q.where(or_(t == tag, t.like(f"{tag},%"), t.like(f"%,{tag}"), t.like(f"%,{tag},%")))
        q = q.order_by(m.Run.id.desc() if newest_first else m.Run.id)
        if limit:
            q = q.limit(limit)
        with self.read() as s:
            return list(s.scalars(q))

    def run_rows(self, *, ids: Sequence[int] | None = None, after_id: int | None = None,
                 limit: int | None = None, newest_first: bool = False) -> list:
        """Runs as light read-only rows (Core, no ORM objects): what live views poll.
        `after_id` and `ids` combine with OR: new runs plus the ones that may change."""
        q = select(m.Run.__table__)
        conds = []
        if after_id is not None:
            conds.append(m.Run.id > after_id)
        if ids is not None:
            conds.append(m.Run.id.in_(list(ids)))
        if conds:
            q = q.where(or_(*conds))
        q = q.order_by(m.Run.id.desc() if newest_first else m.Run.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as c:
            return list(c.execute(q))

    def summary_rows(self, run_ids: Sequence[int]) -> dict[int, dict]:
        """{run_id: {key: row with last, min, max, count}} via Core, for many runs at once."""
        out: dict[int, dict] = {}
        if not run_ids:
            return out
        t = m.MetricSummary.__table__
        with self.engine.connect() as c:
            for chunk in range(0, len(run_ids), 5000):  # stay far below SQLite's variable limit
                ids = list(run_ids[chunk:chunk + 5000])
                for row in c.execute(select(t).where(t.c.run_id.in_(ids))):
                    out.setdefault(row.run_id, {})[row.key] = row
        return out

    def run_statuses(self) -> dict[int, str]:
        """{id: status} of every run: the cheap scan that tells a poller what changed."""
        with self.read() as s:
            return dict(s.execute(select(m.Run.id, m.Run.status)).all())

    def score_groups(self, metric: str, *, dataset: str | None = None, kind: str | None = None,
                     run_ids: Sequence[int] | None = None) -> list[tuple]:
        """(provenance_key, runs, newest score id) per provenance of `metric`, counted in SQL."""
        q = (select(m.Score.provenance_key, func.count(func.distinct(m.Score.run_id)), func.max(m.Score.id))
             .join(m.Run, m.Run.id == m.Score.run_id).where(m.Score.metric == metric)
             .group_by(m.Score.provenance_key))
        if dataset:
            q = q.where(m.Run.dataset == dataset)
        if kind:
            q = q.where(m.Run.kind == kind)
        if run_ids is not None:  # a sweep's, a study's or a report's runs
            q = q.where(m.Score.run_id.in_(list(run_ids)))
        with self.read() as s:
            return [tuple(r) for r in s.execute(q)]

    def board_scores(self, metric: str, provenance_key: str, higher_is_better: bool, *, best: bool = False,
                     dataset: str | None = None, kind: str | None = None,
                     run_ids: Sequence[int] | None = None) -> list[tuple]:
        """(run_id, name, kind, dataset, config, value, std, step, evaluations) per run under one
        provenance, best first. A run's entry is its score at its newest evaluated checkpoint (the
        newest evaluation of that step), or with `best` its best score; `evaluations` counts its
        scores under this provenance, so a board can show how often each run was scored."""
        q = (select(m.Score.run_id, m.Run.name, m.Run.kind, m.Run.dataset, m.Run.config, m.Score.value,
                    m.Score.std, m.Score.step, m.Score.id)
             .join(m.Run, m.Run.id == m.Score.run_id)
             .where(m.Score.metric == metric, m.Score.provenance_key == provenance_key))
        if dataset:
            q = q.where(m.Run.dataset == dataset)
        if kind:
            q = q.where(m.Run.kind == kind)
        if run_ids is not None:
            q = q.where(m.Score.run_id.in_(list(run_ids)))

        def rank(row) -> tuple:  # larger wins
            if best:
                return (row[5] if higher_is_better else -row[5],)
            return (row[7] if row[7] is not None else -1, row[8])

        entry: dict[int, tuple] = {}
        count: dict[int, int] = {}
        with self.read() as s:
            for row in s.execute(q):
                count[row[0]] = count.get(row[0], 0) + 1
                cur = entry.get(row[0])
                if cur is None or rank(row) > rank(cur):
                    entry[row[0]] = tuple(row)
        rows = [(*r[:8], count[r[0]]) for r in entry.values()]
        return sorted(rows, key=lambda r: -r[5] if higher_is_better else r[5])

    def score_candidates(self, run_ids: Sequence[int], keys: Sequence[str]) -> list[tuple]:
        """(run_id, kind, stored, metric, value, step, order) for every stored score and every
        logged summary among `keys` of these runs, in one query (a UNION ALL), for listings to
        pick from. `stored` is 1 for a score, 0 for a training metric's last value; `order` ranks
        a run's evaluations of one metric at one step (the newest evaluation wins)."""
        if not run_ids or not keys:
            return []
        sc, su, runs = m.Score.__table__, m.MetricSummary.__table__, m.Run.__table__
        out: list[tuple] = []
        with self.engine.connect() as c:
            for chunk in range(0, len(run_ids), 5000):  # stay far below SQLite's variable limit
                ids = list(run_ids[chunk:chunk + 5000])
                stored = (select(sc.c.run_id, runs.c.kind, literal(1), sc.c.metric, sc.c.value, sc.c.step, sc.c.id)
                          .join(runs, runs.c.id == sc.c.run_id).where(sc.c.run_id.in_(ids), sc.c.metric.in_(keys)))
                logged = (select(su.c.run_id, runs.c.kind, literal(0), su.c.key, su.c.last, su.c.last_step, literal(0))
                          .join(runs, runs.c.id == su.c.run_id).where(su.c.run_id.in_(ids), su.c.key.in_(keys)))
                out += [tuple(r) for r in c.execute(union_all(stored, logged))]
        return out

    def score_provenance(self, score_id: int) -> dict:
        with self.read() as s:
            return json.loads(s.execute(select(m.Score.provenance).where(m.Score.id == score_id)).scalar() or "{}")

    def update_run(self, run_id: int, *, attempt: int | None = None, **fields: Any) -> bool:
        """Set fields; with `attempt`, only while that attempt is the run's current one."""
        q = update(m.Run).where(m.Run.id == run_id)
        if attempt is not None:
            q = q.where(m.Run.attempt == attempt)
        with self.write() as s:
            return s.execute(q.values(**fields)).rowcount == 1

    def transition(self, run_id: int, to: str, *, when: Iterable[str] | None = None, attempt: int | None = None,
                   **fields: Any) -> bool:
        """Set status `to` only if the run is still in one of `when` (and, with `attempt`, still on
        that attempt); True if it changed. The conditions make transitions race-free between a
        worker and a reaper, and keep a stale worker from overwriting a newer attempt."""
        q = update(m.Run).where(m.Run.id == run_id)
        if when is not None:
            q = q.where(m.Run.status.in_(list(when)))
        if attempt is not None:
            q = q.where(m.Run.attempt == attempt)
        with self.write() as s:
            return s.execute(q.values(status=to, **fields)).rowcount == 1

    def start_attempt(self, run_id: int, when: Iterable[str], **fields: Any) -> int | None:
        """A worker starts the run as a new attempt: status running and attempt + 1 if the run is
        in one of `when`. Returns the new attempt number, or None when it could not start."""
        with self.write() as s:
            done = s.execute(update(m.Run).where(m.Run.id == run_id, m.Run.status.in_(list(when)))
                             .values(status=m.RUNNING, attempt=m.Run.attempt + 1, **fields)).rowcount
            return s.scalar(select(m.Run.attempt).where(m.Run.id == run_id)) if done else None

    def heartbeat(self, run_id: int, step: int | None = None, *, attempt: int | None = None) -> bool:
        """The worker is alive. True if that brought the run back from `unknown` (marked so
        when its heartbeats stopped arriving) to running. StaleAttempt when a newer attempt owns
        the run."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if step is not None:
            values["step"] = step
        mine = [m.Run.id == run_id] + ([m.Run.attempt == attempt] if attempt is not None else [])
        with self.write() as s:
            if s.execute(update(m.Run).where(*mine).values(**values)).rowcount != 1:
                raise StaleAttempt(f"run {run_id} is no longer on attempt {attempt}")
            back = s.execute(update(m.Run).where(*mine, m.Run.status == m.UNKNOWN)
                             .values(status=m.RUNNING, error=None))
            return back.rowcount == 1

    def delete_run(self, run_id: int, *, files: bool = True) -> str | None:
        """Forget a run and remove its folder. The folder is kept (and the reason returned) when
        it is not the run's own; a symbolic link is removed, never followed."""
        run = self.get_run(run_id)
        with self.write() as s:
            for table in (m.Metric, m.MetricSummary, m.Artifact, m.SystemSample, m.Event, m.Score):
                s.execute(delete(table).where(table.run_id == run_id))
            s.execute(update(m.Run).where(m.Run.parent_id == run_id).values(parent_id=None))
            s.execute(delete(m.Run).where(m.Run.id == run_id))
        if not files or not run.run_dir:
            return None
        path = Path(run.run_dir)
        if path.is_symlink():
            path.unlink()
            return f"removed the link {path}; what it points to was kept"
        problem = self.folder_problem(run)
        if problem:
            return f"kept {path}: {problem}" if path.exists() else None
        shutil.rmtree(path, ignore_errors=True)
        return None

    def claim_queued(self, host: str, slots: int, *, executor: str = "local",
                     devices: Sequence[str] = (), cpu_slots: int | None = None) -> list[m.Run]:
        """Move the oldest queued runs into free slots on `host` (status -> starting).

        Counting and claiming happen in one serialised write transaction, so two tuigen
        processes scheduling at once never overfill the slots or start a run twice.
        `devices` (e.g. cuda:0, cuda:1) are handed out as each run's resources ask ("gpus",
        default 1: a run of 2 gets "cuda:0,1"); empty means CPU, where a run of N processes
        takes N slots. A run whose config names a device gets that one: `cuda:N` waits for
        physical GPU N; `cpu` takes no GPU, only one of `cpu_slots` (default: `slots`) CPU slots.
        Strictly oldest first: a run waiting for two GPUs is not overtaken.
        """
        with self.write() as s:
            serialize(s.connection(), "schedule")
            live = list(s.scalars(select(m.Run).where(
                m.Run.status.in_(m.LIVE), m.Run.executor == executor, m.Run.host == host)))
            user = current_user()
            on_gpu = [r for r in live if not (devices and r.device == "cpu")]
            free = slots - sum(_slots_taken(r, slots, bool(devices)) for r in on_gpu)
            free_cpu = (cpu_slots or slots) - (len(live) - len(on_gpu))
            busy_devices = {f"cuda:{i}" for r in live if r.device.startswith("cuda:")
                            for i in r.device[5:].split(",")}
            free_devices = [d for d in devices if d not in busy_devices]
            sweep_live: dict[int, int] = {}
            for r in live:
                if r.sweep_id:
                    sweep_live[r.sweep_id] = sweep_live.get(r.sweep_id, 0) + 1
            limits = dict(s.execute(select(m.Sweep.id, m.Sweep.max_parallel)).all())
            claimed = []
            # Only runs this user launched on this host: nothing in a shared store ever runs
            # under another account, or on a machine it was not launched from.
            mine = select(m.Run).where(m.Run.status == m.QUEUED, m.Run.executor == executor,
                                       m.Run.launched_by == user, m.Run.launched_on == host)
            for run in s.scalars(mine.order_by(m.Run.id)):
                if run.sweep_id and limits.get(run.sweep_id) and sweep_live.get(run.sweep_id, 0) >= limits[run.sweep_id]:
                    continue
                want = _device_asked(run)
                if devices and want == "cpu":  # a CPU run on a GPU host: a CPU slot, no GPU
                    if free_cpu < 1:
                        break
                    free_cpu -= 1
                    mine = []
                else:
                    need = _slots_taken(run, slots, bool(devices))
                    pool = [want] if want.startswith("cuda:") and devices else free_devices
                    mine = [d for d in pool if d in free_devices][:need]
                    if need > free or len(mine) < (need if devices else 0):
                        break
                    free -= need
                    free_devices = [d for d in free_devices if d not in mine]
                run.status, run.host, run.started_at = m.STARTING, host, time.time()
                run.pid, run.proc_start, run.ended_at, run.error = None, None, None, None
                # no GPU here but one named: the worker says so in one line (launch refuses it first)
                fallback = want if want.startswith("cuda:") else "cpu"
                run.device = "cuda:" + ",".join(d[5:] for d in mine) if mine else fallback
                if run.sweep_id:
                    sweep_live[run.sweep_id] = sweep_live.get(run.sweep_id, 0) + 1
                claimed.append(run)
        return claimed

    # -- metrics --------------------------------------------------------------------
    def log_metrics(self, run_id: int, points: Sequence[tuple[str, int, float, float]], *,
                    attempt: int | None = None) -> int:
        """Insert (key, step, value, wall_time) points and update the summary in one
        transaction. NaN cannot be stored portably (SQLite reads it back as NULL), so NaN
        points are dropped; returns how many were dropped so the caller can warn once.
        With `attempt`, StaleAttempt (nothing written) when a newer attempt owns the run."""
        rows = [(run_id, k, int(st), float(v), float(w)) for k, st, v, w in points if v == v]  # v != v: NaN
        dropped = len(points) - len(rows)
        if not rows:
            return dropped
        with self.write() as s:
            if attempt is not None and s.scalar(select(m.Run.attempt).where(m.Run.id == run_id)) != attempt:
                raise StaleAttempt(f"run {run_id} is no longer on attempt {attempt}")
            conn = s.connection()
            # The DB-API's executemany with plain tuples: this is the hot path of every run, and
            # SQLAlchemy's per-row parameter handling cost more than SQLite's insert itself.
            conn.exec_driver_sql(_metric_insert_sql(conn), rows)
            s.execute(*self._summary_upsert(s, run_id, rows))
            last_step = max(r[2] for r in rows)
            s.execute(update(m.Run).where(m.Run.id == run_id, m.Run.step < last_step).values(step=last_step))
        return dropped

    def _summary_upsert(self, s: Session, run_id: int, rows: list[tuple]):
        """The summary upsert for metric rows (run_id, key, step, value, wall_time) in write order."""
        keys = {r[1] for r in rows}
        by_key: dict[str, tuple[list[int], list[float]]] = {}
        if len(keys) <= 16:  # the usual few keys: a comprehension per key beats one Python loop
            for key in keys:
                mine = [r for r in rows if r[1] == key]
                by_key[key] = ([r[2] for r in mine], [r[3] for r in mine])
        else:
            for _, key, step, value, _ in rows:
                steps, values = by_key.setdefault(key, ([], []))
                steps.append(step)
                values.append(value)
        batch = []
        for key, (steps, values) in by_key.items():
            top = max(steps)
            last = len(steps) - 1 - steps[::-1].index(top)  # the latest write at the highest step
            batch.append(dict(run_id=run_id, key=key, last=values[last], last_step=top,
                              min=min(values), max=max(values), count=len(values)))
        t = m.MetricSummary.__table__
        ins = upsert_insert(s.connection())(t)
        ex = ins.excluded
        stmt = ins.on_conflict_do_update(index_elements=[t.c.run_id, t.c.key], set_={
            "last": case((ex.last_step >= t.c.last_step, ex.last), else_=t.c.last),
            "last_step": case((ex.last_step >= t.c.last_step, ex.last_step), else_=t.c.last_step),
            "min": case((ex.min < t.c.min, ex.min), else_=t.c.min),
            "max": case((ex.max > t.c.max, ex.max), else_=t.c.max),
            "count": t.c.count + ex.count,
        })
        return stmt, batch

    def metrics(self, run_id: int, key: str | None = None, *, after_id: int = 0,
                limit: int | None = None) -> list[MetricPoint]:
        """Points of a run in write order; `after_id` makes polling incremental."""
        q = select(m.Metric.id, m.Metric.key, m.Metric.step, m.Metric.value, m.Metric.wall_time).where(
            m.Metric.run_id == run_id, m.Metric.id > after_id)
        if key:
            q = q.where(m.Metric.key == key)
        q = q.order_by(m.Metric.id)
        if limit:
            q = q.limit(limit)
        with self.read() as s:
            return [MetricPoint(*row) for row in s.execute(q)]

    def metric_curves(self, run_id: int, points: int = 1500) -> tuple[list[MetricPoint], int]:
        """A run's curves for drawing, in step order, at most about `points` points each, and the
        newest point id to poll on from. A longer curve is reduced in SQL to the lowest and highest
        value of each of points/2 step buckets (the ink a plot of that width has; a spike stays),
        so a run of millions of points opens in bounded memory; a shorter one comes whole (one
        bucket a step). One pass over the run's points; reduced points carry no wall time."""
        buckets = max(1, points // 2)
        widths = {k: math.ceil((max(row.last_step, 0) + 1) / buckets) if row.count > points else 1
                  for k, row in self.summary(run_id).items()}
        with self.read() as s:
            newest = s.scalar(select(func.max(m.Metric.id)).where(m.Metric.run_id == run_id)) or 0
            return (_envelopes(s, run_id, widths, newest) if widths else []), newest

    def iter_metrics(self, run_id: int, batch: int = 10_000) -> Iterator[MetricPoint]:
        """Every point of a run in write order, read `batch` at a time (memory stays flat)."""
        after = 0
        while True:
            chunk = self.metrics(run_id, after_id=after, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after = chunk[-1].id

    def summary(self, run_ids: int | Sequence[int]) -> dict:
        """{key: MetricSummary} for one run, or {run_id: {key: MetricSummary}} for several."""
        ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
        out: dict[int, dict[str, m.MetricSummary]] = {i: {} for i in ids}
        if ids:
            with self.read() as s:
                for row in s.scalars(select(m.MetricSummary).where(m.MetricSummary.run_id.in_(ids))):
                    out[row.run_id][row.key] = row
        return out[ids[0]] if isinstance(run_ids, int) else out

    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Forget points logged after `after_step` (a resume rewinds to its checkpoint, so the
        replayed steps are not stored twice) and rebuild that run's summary."""
        with self.write() as s:
            n = s.execute(delete(m.Metric).where(m.Metric.run_id == run_id, m.Metric.step > after_step)).rowcount
            s.execute(delete(m.MetricSummary).where(m.MetricSummary.run_id == run_id))
            rows = [(run_id, k, st, v, None) for k, st, v in s.execute(
                select(m.Metric.key, m.Metric.step, m.Metric.value).where(m.Metric.run_id == run_id)
                .order_by(m.Metric.id))]
            if rows:
                s.execute(*self._summary_upsert(s, run_id, rows))
            s.execute(update(m.Run).where(m.Run.id == run_id).values(step=after_step))
        return n

    def truncate_scores(self, run_id: int, after_step: int) -> int:
        """Forget the run's scores of steps after `after_step` (made during training, e.g. each
        epoch's accuracy, before a stop): the resumed steps score again, and are counted once."""
        with self.write() as s:
            return s.execute(delete(m.Score).where(m.Score.run_id == run_id, m.Score.step > after_step)).rowcount

    # -- artifacts, events, system samples ------------------------------------------
    def add_artifact(self, run_id: int, kind: str, path: str | Path, *, key: str = "",
                     step: int | None = None, meta: dict | None = None) -> int:
        with self.write() as s:
            a = m.Artifact(run_id=run_id, kind=kind, key=key, path=str(path), step=step,
                           meta=json.dumps(meta or {}), created_at=time.time())
            s.add(a)
            s.flush()
            return a.id

    def artifacts(self, run_id: int, kind: str | None = None, key: str | None = None) -> list[m.Artifact]:
        q = select(m.Artifact).where(m.Artifact.run_id == run_id)
        if kind:
            q = q.where(m.Artifact.kind == kind)
        if key:
            q = q.where(m.Artifact.key == key)
        with self.read() as s:
            return list(s.scalars(q.order_by(m.Artifact.id)))

    def remove_artifacts(self, ids: Sequence[int]) -> None:
        if ids:
            with self.write() as s:
                s.execute(delete(m.Artifact).where(m.Artifact.id.in_(list(ids))))

    def add_event(self, run_id: int, message: str, level: str = "info") -> None:
        with self.write() as s:
            s.add(m.Event(run_id=run_id, message=message, level=level, time=time.time()))

    def events(self, run_id: int) -> list[m.Event]:
        with self.read() as s:
            return list(s.scalars(select(m.Event).where(m.Event.run_id == run_id).order_by(m.Event.id)))

    def add_system_samples(self, samples: Sequence[dict]) -> None:
        if samples:
            with self.write() as s:
                s.execute(insert(m.SystemSample), [dict(host=HOST, **x) for x in samples])

    def system_samples(self, run_id: int, since: float = 0.0) -> list[m.SystemSample]:
        q = select(m.SystemSample).where(m.SystemSample.run_id == run_id, m.SystemSample.time > since)
        with self.read() as s:
            return list(s.scalars(q.order_by(m.SystemSample.id)))

    # -- scores -----------------------------------------------------------------------
    def add_score(self, run_id: int, metric: str, value: float, provenance: dict, *, std: float | None = None,
                  step: int | None = None) -> int:
        """Record an evaluation. `provenance` must hold everything that makes scores comparable
        except the checkpoint step (N, reference set, extractor, sampler, guidance, weights)."""
        if not math.isfinite(value):
            raise ValueError(f"{metric} of run {run_id} is {value}; refusing to store a non-finite score")
        with self.write() as s:
            sc = m.Score(run_id=run_id, metric=metric, value=float(value), std=std, step=step,
                         provenance=json.dumps(provenance, sort_keys=True, default=str),
                         provenance_key=provenance_key(metric, provenance), created_at=time.time())
            s.add(sc)
            s.flush()
            return sc.id

    def scores(self, *, metric: str | None = None, run_ids: Sequence[int] | None = None,
               provenance_key: str | None = None) -> list[m.Score]:
        q = select(m.Score)
        if metric:
            q = q.where(m.Score.metric == metric)
        if run_ids is not None:
            q = q.where(m.Score.run_id.in_(list(run_ids)))
        if provenance_key:
            q = q.where(m.Score.provenance_key == provenance_key)
        with self.read() as s:
            return list(s.scalars(q.order_by(m.Score.id)))

    # -- sweeps ---------------------------------------------------------------------
    def create_sweep(self, name: str, kind: str, spec: dict, max_parallel: int | None = None) -> int:
        with self.write() as s:
            sw = m.Sweep(name=name, kind=kind, spec=json.dumps(spec), max_parallel=max_parallel,
                         created_at=time.time())
            s.add(sw)
            s.flush()
            return sw.id

    # -- studies (tuigen tune) ----------------------------------------------------------
    def create_study(self, name: str, kind: str, objective: str, direction: str, spec: dict,
                     storage: str) -> m.Study:
        with self.write() as s:
            st = m.Study(name=name, kind=kind, objective=objective, direction=direction, spec=json.dumps(spec),
                         storage=storage, status="running", driver_host="", created_at=time.time())
            s.add(st)
            s.flush()
            return st

    def get_study(self, name_or_id: str | int) -> m.Study:
        """A study by name, or by id when given a number that names no study."""
        with self.read() as s:
            st = s.scalars(select(m.Study).where(m.Study.name == str(name_or_id))).first()
            if st is None and str(name_or_id).isdigit():
                st = s.get(m.Study, int(name_or_id))
        if st is None:
            raise StudyNotFound(f"no study named {name_or_id!r} in {self.url}")
        return st

    def list_studies(self) -> list[m.Study]:
        with self.read() as s:
            return list(s.scalars(select(m.Study).order_by(m.Study.id)))

    def update_study(self, study_id: int, **fields: Any) -> None:
        with self.write() as s:
            s.execute(update(m.Study).where(m.Study.id == study_id).values(**fields))

    def studies_of(self, run_ids: Sequence[int]) -> dict[int, str]:
        """{study_id: name} for the studies these runs are trials of (for listings)."""
        with self.read() as s:
            q = (select(m.Study.id, m.Study.name).join(m.Run, m.Run.study_id == m.Study.id)
                 .where(m.Run.id.in_(list(run_ids))).distinct())
            return dict(s.execute(q).all())

    def objective_points(self, run_id: int, key: str) -> list[tuple[int, float]]:
        """(step, value) of a run's objective `key`, by step: its stored scores of that metric,
        at the provenance of the newest one (the newest evaluation of each step), or, with no
        stored score, its logged metric points. The last point is the run's objective value;
        the ones before it are what a pruner sees during training."""
        scores = [sc for sc in self.scores(metric=key, run_ids=[run_id]) if sc.step is not None]
        if scores:
            newest = scores[-1].provenance_key
            by_step = {sc.step: sc.value for sc in scores if sc.provenance_key == newest}  # id order: newest wins
        else:
            by_step = {p.step: p.value for p in self.metrics(run_id, key)}
        return sorted(by_step.items())


def _envelopes(s: Session, run_id: int, widths: dict[str, int], newest: int) -> list[MetricPoint]:
    """Each curve of `widths` as the lowest and highest value of every `width` of its steps, in
    step order; one pass over the run's points. (`//` of two integer columns renders as SQL's
    integer division on SQLite and PostgreSQL.)"""
    M = m.Metric
    bucket = M.step // case(widths, value=M.key)
    rows = s.execute(select(M.key, func.min(M.step), func.max(M.step), func.min(M.value), func.max(M.value),
                            func.max(M.id))
                     .where(M.run_id == run_id, M.key.in_(list(widths)), M.id <= newest)
                     .group_by(M.key, bucket).order_by(M.key, bucket)).all()
    out: list[MetricPoint] = []
    for key, first, last, low, high, newest_id in rows:
        if low == high:
            out.append(MetricPoint(newest_id, key, last, low, None))
            continue
        # draw the bucket's stroke from the end nearer the previous point: one continuous line
        prev = out[-1].value if out and out[-1].key == key else high
        a, b = (high, low) if abs(prev - high) <= abs(prev - low) else (low, high)
        out += [MetricPoint(newest_id, key, first, a, None), MetricPoint(newest_id, key, last, b, None)]
    return out

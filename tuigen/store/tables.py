"""The tables of a tuigen store (SQLAlchemy 2.x declarative).

Portable types only: the same models serve SQLite and PostgreSQL. Times are UNIX seconds
(float) so every process, host and dialect agrees on them without time-zone handling.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64-bit ids for metrics.
BigId = BigInteger().with_variant(Integer(), "sqlite")

from .statuses import (ACTIVE, COMPLETED, CRASHED, FAILED, FINISHED, KILLED, LIVE, PRUNED, QUEUED,  # noqa: F401
                       RESUMABLE, RUNNING, STARTING, STATUSES, UNKNOWN)


class Base(DeclarativeBase):
    pass


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the grid of values
    max_parallel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class StoreMeta(Base):
    """Facts about the store itself: its id (a UUID every run folder's marker names)."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Study(Base):
    """A hyperparameter search (`tuigen tune`): its trials are ordinary runs linked by
    runs.study_id; the sampler's state lives in Optuna's own storage beside the store."""

    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    objective: Mapped[str] = mapped_column(String(200))  # a stored score's metric, or a logged metric
    direction: Mapped[str] = mapped_column(String(16))  # minimize | maximize
    spec: Mapped[str] = mapped_column(Text, default="{}")  # JSON: search space, fixed values, trials, pruner...
    storage: Mapped[str] = mapped_column(Text, default="")  # where Optuna keeps it (no secrets)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | stopped | failed
    driver_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    driver_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    driver_host: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_uuid", "uuid", unique=True),
                      {"sqlite_autoincrement": True})  # ids are never reused, even after rm
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # + 1 at every start
    launched_by: Mapped[str] = mapped_column(String(200), default="", server_default="")  # user name
    launched_on: Mapped[str] = mapped_column(String(200), default="", server_default="")  # host name
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(64), index=True)
    project: Mapped[str] = mapped_column(String(200), default="")
    dataset: Mapped[str] = mapped_column(String(500), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    config: Mapped[str] = mapped_column(Text, default="{}")  # JSON of the kind's config dataclass
    tags: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    command: Mapped[str | None] = mapped_column(Text, nullable=True)  # for `tuigen exec` runs
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    proc_start: Mapped[float | None] = mapped_column(Float, nullable=True)  # tells a reused pid apart
    executor: Mapped[str] = mapped_column(String(32), default="local")
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # e.g. a Slurm job id
    resources: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON: gpus, partition, time...
    device: Mapped[str] = mapped_column(String(64), default="")
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_dir: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    trial_number: Mapped[int | None] = mapped_column(Integer, nullable=True)  # Optuna's trial.number


class Metric(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        # "everything after id N" for live views; the only index, as each one slows every insert
        Index("ix_metrics_run_id_id", "run_id", "id"),
    )


class MetricSummary(Base):
    """last / min / max per (run, key), kept current on every write so listings never scan metrics."""

    __tablename__ = "metric_summary"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[float] = mapped_column(Float)
    last_step: Mapped[int] = mapped_column(Integer)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # image | checkpoint | samples | stats | table | text
    key: Mapped[str] = mapped_column(String(200), default="")
    path: Mapped[str] = mapped_column(Text)
    meta: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[float] = mapped_column(Float)


class SystemSample(Base):
    __tablename__ = "system_samples"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    time: Mapped[float] = mapped_column(Float)
    cpu_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpu_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpu_util: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_mem_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpu_mem_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpu_temp: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_power: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_system_samples_run_time", "run_id", "time"),)


class Event(Base):
    """Things a person should see about a run: crash reasons, warnings, resumes."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    time: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(16), default="info")  # info | warning | error
    message: Mapped[str] = mapped_column(Text)


class Score(Base):
    """An evaluation of a run (FID, KID, accuracy) with everything that makes two scores
    comparable. Leaderboards rank only scores whose `provenance_key` is equal."""

    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(64))  # fid | kid | accuracy | ...
    value: Mapped[float] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float, nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # checkpoint step evaluated
    provenance: Mapped[str] = mapped_column(Text, default="{}")  # JSON: N, reference, extractor, sampler...
    provenance_key: Mapped[str] = mapped_column(String(64), index=True)  # hash of the comparable parts
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_scores_metric_key", "metric", "provenance_key"),)


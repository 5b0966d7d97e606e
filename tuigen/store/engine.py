"""Where the store lives and how connections to it are set up.

This is the only module that knows SQLite exists: pragmas on every connection, and
write transactions that start with BEGIN IMMEDIATE so two writers under WAL queue on
busy_timeout instead of dead-locking on a read-to-write upgrade.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from .filesystems import check_sqlite_location

DEFAULT_URL = "sqlite:///runs.db"
BUSY_TIMEOUT_MS = 30_000
WRITE = {"tuigen_write": True}  # execution option: this transaction will write
_warned: set[str] = set()


def resolve_url(url: str | None = None) -> str:
    """`--db` beats TUIGEN_DB beats ./runs.db. A bare path means a SQLite file.

    SQLite paths are made absolute so a worker started elsewhere opens the same file.
    """
    url = url or os.environ.get("TUIGEN_DB") or DEFAULT_URL
    if "://" not in url:
        url = "sqlite:///" + url
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        u = u.set(database=str(Path(u.database).expanduser().resolve()))
    if u.drivername == "postgresql":  # SQLAlchemy's default is psycopg2; we ship psycopg 3
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def runs_root(url: str) -> Path:
    """Run folders live beside a SQLite file (runs/<id>), or in TUIGEN_RUNS_DIR / ./runs."""
    env = os.environ.get("TUIGEN_RUNS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).parent / "runs"
    return Path.cwd() / "runs"


def make_engine(url: str) -> Engine:
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    db = make_url(url).database
    if db and db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        warning = check_sqlite_location(db)
        if warning and warning not in _warned:  # once per process, on stderr: stdout may be --json
            _warned.add(warning)
            print(f"tuigen: {warning}", file=sys.stderr)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # every connection, not just the first
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the write lock up front; readers stay deferred so they never block.
        immediate = conn.get_execution_options().get("tuigen_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_LOCK_KEYS = {"migrate": 7461726, "schedule": 7461727}


def serialize(conn, name: str) -> None:
    """Make this write transaction exclusive among tuigen processes for `name`
    (schema upgrades, claiming queued runs).

    SQLite: the enclosing BEGIN IMMEDIATE already holds the database's write lock.
    PostgreSQL: a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEYS[name]})")


def upsert_insert(conn):
    """INSERT .. ON CONFLICT for the connection's dialect (both spell it the same in SQLAlchemy)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert

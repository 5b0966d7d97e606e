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

from ..errors import InputError
from ..settings import busy_timeout_s
from .filesystems import check_sqlite_location

DEFAULT_URL = "sqlite:///runs.db"
WRITE = {"tuigen_write": True}  # execution option: this transaction will write
_warned: set[str] = set()


def resolve_url(url: str | None = None) -> str:
    """`--db` beats TUIGEN_DB beats ./runs.db. A bare path means a SQLite file.

    SQLite paths are made absolute so a worker started elsewhere opens the same file.
    """
    url = url or os.environ.get("TUIGEN_DB") or DEFAULT_URL
    if "://" not in url:
        url = "sqlite:///" + url
    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError: say what a store URL looks like
        raise InputError(f"--db {display_url(url)}: not a store URL; expected a SQLite file path "
                         "(runs.db), sqlite:///PATH or postgresql://USER@HOST/DB") from None
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:" or u.database.startswith("file::memory:"):
            raise InputError("--db: an in-memory SQLite store cannot work: each run's worker is a separate "
                             "process and would see an empty store; give a file, e.g. --db runs.db")
        u = u.set(database=str(Path(u.database).expanduser().resolve()))
    if u.drivername == "postgresql":  # SQLAlchemy's default is psycopg2; we ship psycopg 3
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """A store URL fit for messages, argv and files: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL: show nothing of it that could be a secret
        return "<the store URL>" if "@" in url else url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def runs_root(url: str) -> Path:
    """Run folders live beside a SQLite file (runs/<id>), or in TUIGEN_RUNS_DIR / ./runs."""
    env = os.environ.get("TUIGEN_RUNS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database:
        return Path(u.database).parent / "runs"
    return Path.cwd() / "runs"


def _check_sqlite_path(db: Path) -> None:
    """A store path that can never be a SQLite file fails with its name, not an OSError."""
    from ..errors import TuigenError

    if db.is_dir():
        raise TuigenError(f"the store {db} is a folder; expected --db / TUIGEN_DB to name a SQLite file "
                          f"such as {db / 'runs.db'}, or a postgresql:// URL")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
        raise TuigenError(f"the store {db} cannot be created: its folder {db.parent} cannot be made "
                          f"({why}); expected --db / TUIGEN_DB in a folder that exists or can be created") from None


def make_engine(url: str) -> Engine:
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    db = make_url(url).database
    if db:
        _check_sqlite_path(Path(db))
        warning = check_sqlite_location(db)
        if warning and warning not in _warned:  # once per process, on stderr: stdout may be --json
            _warned.add(warning)
            print(f"tuigen: {warning}", file=sys.stderr)
    busy_ms = busy_timeout_ms()
    engine = create_engine(url, connect_args={"timeout": busy_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # every connection, not just the first
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the write lock up front; readers stay deferred so they never block.
        immediate = conn.get_execution_options().get("tuigen_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def busy_timeout_ms() -> int:
    """How long a writer waits for another's lock (30 s; TUIGEN_BUSY_TIMEOUT seconds)."""
    return int(busy_timeout_s() * 1000)


# SQLite's messages for a store we cannot use, and what they mean for a person.
_SQLITE_PROBLEMS = (
    ("file is not a database", "is damaged or not a tuigen store (file is not a database)"),
    ("malformed", "is damaged (database disk image is malformed); restore a backup or start a new store with --db"),
    ("database is locked", "is locked by another process for longer than the busy timeout ({timeout:g} s); "
                           "retry when it is done, or raise TUIGEN_BUSY_TIMEOUT"),
    ("disk is full", "cannot grow: no space left on device (database or disk is full)"),
    ("unable to open database file", "cannot be opened (unable to open database file)"),
    ("readonly database", "is read-only for this user (attempt to write a readonly database)"),
    ("disk i/o error", "could not be read or written (disk I/O error)"),
)


# PostgreSQL: the driver's words for a server that cannot be reached right now.
_PG_UNREACHABLE = ("connection refused", "could not connect", "server closed the connection", "connection timed out",
                   "terminating connection", "the database system is starting up", "the database system is shutting down",
                   "could not receive data", "could not send data", "no route to host", "connection is lost")


def is_busy(url: str, exc: BaseException) -> bool:
    """A failure worth retrying: SQLite's lock held past the busy timeout, a PostgreSQL server
    briefly out of reach."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if is_sqlite(url):
        return "database is locked" in text or "database is busy" in text
    return any(n in text for n in _PG_UNREACHABLE)


def explain(url: str, exc: BaseException) -> str | None:
    """One sentence naming the store and the problem, or None if `exc` is not one of the
    store-level failures above (a bug of ours keeps its traceback)."""
    if not is_sqlite(url):
        if is_busy(url, exc):
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return f"the store {display_url(url)} cannot be reached right now ({first})"
        return None
    text = str(getattr(exc, "orig", None) or exc).lower()
    for needle, meaning in _SQLITE_PROBLEMS:
        if needle in text:
            return f"the store {make_url(url).database} " + meaning.format(timeout=busy_timeout_ms() / 1000)
    return None


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

"""Schema migrations (Alembic), applied automatically when a store is opened.

Opening checks the stored revision with one cheap query; only an old or new database pays
for importing Alembic. The upgrade runs inside one write transaction holding a lock, so two
processes that open the same new database at once cannot both create it.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from .engine import WRITE, serialize

# The newest revision in migrations/versions (a test checks it matches Alembic's head).
SCHEMA_HEAD = "0006_studies"
MIGRATIONS = Path(__file__).parent / "migrations"


def current_revision(conn) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(conn=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine) -> None:
    with engine.connect() as conn:
        if current_revision(conn) == SCHEMA_HEAD:
            return
    from alembic import command

    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # a table rebuild must not cascade deletes; settable only outside a transaction
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.execution_options(**WRITE).begin():
                serialize(conn, "migrate")
                if current_revision(conn) == SCHEMA_HEAD:  # another process just did it
                    return
                command.upgrade(alembic_config(conn), "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"schema upgrade left {len(broken)} dangling references; rolled back")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")

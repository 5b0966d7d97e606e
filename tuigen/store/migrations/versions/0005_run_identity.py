"""Run identity: a store id, a UUID and an attempt counter per run, who launched it and where;
run ids never reused (SQLite AUTOINCREMENT; PostgreSQL sequences never reuse already).

Existing runs get a UUID, and their folders a marker naming this store and run (a folder that
already carries another store's marker is left alone: the first store to upgrade keeps it).

Revision ID: 0005_run_identity
Revises: 0004_metrics_one_index
"""
import json
import os
import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005_run_identity"
down_revision = "0004_metrics_one_index"
branch_labels = None
depends_on = None

MARKER = ".tuigen-run.json"  # tuigen/store/identity.py has the same name (migrations may not import it)


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table("store_meta", sa.Column("key", sa.String(64), primary_key=True),
                    sa.Column("value", sa.Text, nullable=False))
    store_id = str(uuid.uuid4())
    bind.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('store_id', :v), ('created_at', :t)"),
                 {"v": store_id, "t": repr(time.time())})
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("uuid", sa.String(36), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("launched_by", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("launched_on", sa.String(200), nullable=False, server_default=""))
    rows = list(bind.execute(sa.text("SELECT id, run_dir FROM runs")))
    for run_id, run_dir in rows:
        run_uuid = str(uuid.uuid4())
        bind.execute(sa.text("UPDATE runs SET uuid = :u WHERE id = :i"), {"u": run_uuid, "i": run_id})
        _mark(run_dir, store_id, run_id, run_uuid)
    if bind.dialect.name == "sqlite":
        # Rebuild runs with AUTOINCREMENT (tuigen/store/migrate.py turns foreign keys off around
        # this upgrade, so dropping the old table does not cascade into metrics and artifacts).
        with op.batch_alter_table("runs", recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.alter_column("uuid", existing_type=sa.String(36), nullable=False)
    else:
        op.alter_column("runs", "uuid", existing_type=sa.String(36), nullable=False)
    op.create_index("ix_runs_uuid", "runs", ["uuid"], unique=True)


def _mark(run_dir: str, store_id: str, run_id: int, run_uuid: str) -> None:
    if not run_dir or not os.path.isdir(run_dir) or os.path.islink(run_dir):
        return
    path = os.path.join(run_dir, MARKER)
    if os.path.exists(path):
        return
    try:
        with open(path, "x") as f:
            json.dump({"store": store_id, "run": run_id, "uuid": run_uuid}, f)
    except OSError:
        pass  # a read-only or foreign folder: it stays unmarked, and tuigen will not act on it


def downgrade() -> None:
    op.drop_index("ix_runs_uuid", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name in ("launched_on", "launched_by", "attempt", "uuid"):
            batch.drop_column(name)
    op.drop_table("store_meta")

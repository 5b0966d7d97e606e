"""Metrics keep one secondary index, (run_id, id): every read of points is "this run's points
after id N" (live views, history, export, resume's rewind). The (run_id, key, step) index served
no query tuigen makes, and each index costs every metric insert: with both, SQLite inserted
~436k rows/s here, with one ~556k (bench/logging_vs_peers.py is the hot path it slowed).

Revision ID: 0004_metrics_one_index
Revises: 0003_resources
"""
from alembic import op

revision = "0004_metrics_one_index"
down_revision = "0003_resources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_metrics_run_key_step", table_name="metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_run_key_step", "metrics", ["run_id", "key", "step"])

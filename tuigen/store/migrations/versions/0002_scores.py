"""Scores with provenance: FID / KID / accuracy of a run, comparable only within a provenance.

Revision ID: 0002_scores
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_scores"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("std", sa.Float, nullable=True),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("provenance_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_scores_run_id", "scores", ["run_id"])
    op.create_index("ix_scores_provenance_key", "scores", ["provenance_key"])
    op.create_index("ix_scores_metric_key", "scores", ["metric", "provenance_key"])


def downgrade() -> None:
    op.drop_table("scores")

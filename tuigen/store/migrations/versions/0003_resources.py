"""What a run asks of its executor: GPUs, and for Slurm the partition, time limit and extra
sbatch arguments (JSON, so a new executor option needs no migration).

Revision ID: 0003_resources
Revises: 0002_scores
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_resources"
down_revision = "0002_scores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # batch: SQLite cannot ALTER most things in place
        batch.add_column(sa.Column("resources", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("resources")

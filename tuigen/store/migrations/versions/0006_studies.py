"""Studies (`tuigen tune`): a table of studies, and each trial run's link to its study and Optuna
trial number. The new run status `pruned` needs no schema change (status is a string).

Revision ID: 0006_studies
Revises: 0005_run_identity
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_studies"
down_revision = "0005_run_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("objective", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("storage", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("driver_pid", sa.Integer, nullable=True),
        sa.Column("driver_start", sa.Float, nullable=True),
        sa.Column("driver_host", sa.String(200), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
    )
    # batch: SQLite cannot add a foreign key in place, so the table is rebuilt: keep AUTOINCREMENT
    # (reflection does not see it), and migrate.py keeps foreign keys off so nothing cascades.
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("study_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("trial_number", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_runs_study_id_studies", "studies", ["study_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_runs_study_id", ["study_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_study_id")
        batch.drop_constraint("fk_runs_study_id_studies", type_="foreignkey")
        batch.drop_column("trial_number")
        batch.drop_column("study_id")
    op.drop_table("studies")

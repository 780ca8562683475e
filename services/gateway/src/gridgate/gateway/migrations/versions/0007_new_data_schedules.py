"""new-data schedules: the DID a schedule watches, its batch size, and the files handed out.

``schedule_files`` has one row per (schedule, file DID), its primary key, written in the
same transaction as the job that reads the file and the run that made it
(docs/schedules.md): each new file goes to exactly one job.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("data_did", sa.String(512)))
        batch.add_column(sa.Column("files_per_job", sa.Integer()))
    op.create_table(
        "schedule_files",
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("did", sa.String(512), nullable=False),
        sa.Column("nominal_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_files_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "did", name="pk_schedule_files"),
    )


def downgrade() -> None:
    op.drop_table("schedule_files")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("files_per_job")
        batch.drop_column("data_did")

"""DIRAC jobs: the job callback's token digest and accepted updates, and tombstones of
deleted jobs.

A deleted job's row goes at once, but its facility still has to kill and delete the DIRAC
jobs as their owner; the tombstone lets the auth service hand out that owner's proxy for a
short while after the deletion.

A job's wrapper reports its tasks' start and end to the gateway; ``job_callbacks`` keeps the
key of every accepted update, so a repeated one records nothing new.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("callback_token_hash", sa.String(64)))
    op.create_table(
        "job_tombstones",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("vo", sa.String(128), nullable=False),
        sa.Column("group_name", sa.String(255)),
        sa.Column("facility", sa.String(128), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_job_tombstones_deleted_at", "job_tombstones", ["deleted_at"])
    op.create_table(
        "job_callbacks",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("task_index", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_callbacks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "task_index", "event", "at", name=op.f("pk_job_callbacks")
        ),
    )


def downgrade() -> None:
    op.drop_table("job_callbacks")
    op.drop_table("job_tombstones")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("callback_token_hash")

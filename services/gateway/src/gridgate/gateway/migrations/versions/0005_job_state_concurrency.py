"""Job state under concurrency: a version per job, the time of each task's observation, a
stall reason and a re-drive count, and the clients' idempotency keys.

Every unit of work that changes a job bumps ``jobs.version`` only if it still holds the value
it read (docs/adr/0007-job-state-concurrency.md). ``job_tasks.observed_at`` orders the
monitor's observations so that a late, older one is dropped.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stall_reason", sa.Text()))
        batch.add_column(sa.Column("redrives", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_jobs_phase_updated", "jobs", ["phase", "updated_at"])
    with op.batch_alter_table("job_tasks") as batch:
        batch.add_column(sa.Column("observed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("job_tasks") as batch:
        batch.drop_column("observed_at")
    op.drop_index("ix_jobs_phase_updated", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("redrives")
        batch.drop_column("stall_reason")
        batch.drop_column("version")

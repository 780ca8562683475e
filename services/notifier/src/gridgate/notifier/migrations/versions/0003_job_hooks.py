"""Job hooks: a job's notification URL as a subscription of its own, and each owner's
job-hook signing secret (docs/adr/0018-job-notification-url.md).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.alter_column("sealed_secret", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("hook_job_id", sa.String(255), nullable=True))
        batch.create_index("uq_subscriptions_hook_job", ["hook_job_id"], unique=True)
    with op.batch_alter_table("job_sequences") as batch:
        batch.add_column(
            sa.Column("hooked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "owner_secrets",
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("owner_secrets")
    with op.batch_alter_table("job_sequences") as batch:
        batch.drop_column("hooked")
    hooks = "SELECT id FROM subscriptions WHERE hook_job_id IS NOT NULL"
    op.execute(f"DELETE FROM deliveries WHERE subscription_id IN ({hooks})")  # noqa: S608
    op.execute("DELETE FROM subscriptions WHERE hook_job_id IS NOT NULL")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_index("uq_subscriptions_hook_job")
        batch.drop_column("hook_job_id")
        batch.alter_column("sealed_secret", existing_type=sa.Text(), nullable=False)

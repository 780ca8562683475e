"""A job's own webhook: the notification URL given at its creation.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: existing jobs have no hook (docs/adr/0018-job-notification-url.md).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("notification_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("notification_url")

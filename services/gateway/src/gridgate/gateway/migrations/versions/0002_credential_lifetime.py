"""Remember when a job's credential runs out, and whether its owner was warned.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("credential_expires_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("credential_warned", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("credential_warned")
        batch.drop_column("credential_expires_at")

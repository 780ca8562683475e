"""DiracX links (docs/adr/0016-diracx-user-links.md).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diracx_links",
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("vo", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("diracx_user", sa.String(255), nullable=True),
        sa.Column("sealed_refresh", sa.Text(), nullable=True),
        sa.Column("refresh_expires_at", sa.Float(), nullable=True),
        sa.Column("sealed_access", sa.Text(), nullable=True),
        sa.Column("access_expires_at", sa.Float(), nullable=True),
        sa.Column("sealed_device_code", sa.Text(), nullable=True),
        sa.Column("user_code", sa.String(64), nullable=True),
        sa.Column("verification_uri", sa.Text(), nullable=True),
        sa.Column("device_expires_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sub", "vo", "group_name"),
    )


def downgrade() -> None:
    op.drop_table("diracx_links")

"""Order per job by the gateway's event numbers, and an outbox for the notifier's own events
(docs/adr/0014-job-event-sequence.md).

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
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
    op.create_table(
        "job_sequences",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("contiguous", sa.Integer(), nullable=False),
        sa.Column("ahead", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sequences_ahead",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("sequence", sa.Integer(), primary_key=True),
    )
    op.create_table(
        "notifier_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("message_type", sa.String(255), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_outbox")
    op.drop_table("sequences_ahead")
    op.drop_table("job_sequences")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("sequence")

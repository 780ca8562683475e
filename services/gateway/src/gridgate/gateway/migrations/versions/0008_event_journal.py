"""The event journal: recent job and schedule events, from which live streams resume.

Each row is written in the unit of work that caused its event (with its outbox row) and
pruned after a retention time (docs/events.md); ``event_journal_pruned`` remembers up to
where, so that a resume position older than that is refused rather than silently short. ``tx`` holds the writing transaction's id on
PostgreSQL so that readers can order rows the way they became visible (the ids of concurrent
transactions are handed out in one order and committed in another); SQLite serializes its
writers, so there it stays 0 and the id alone orders rows.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_journal",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("tx", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("schedule_id", sa.String(32)),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_journal")),
        # SQLite reuses the largest id once its row is gone unless told not to.
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_journal_pruned",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tx", sa.BigInteger(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_journal_pruned")),
    )
    op.create_index("ix_event_journal_position", "event_journal", ["tx", "id"])
    op.create_index("ix_event_journal_owner", "event_journal", ["owner", "tx", "id"])
    op.create_index("ix_event_journal_job", "event_journal", ["job_id", "tx", "id"])


def downgrade() -> None:
    op.drop_table("event_journal_pruned")
    op.drop_table("event_journal")

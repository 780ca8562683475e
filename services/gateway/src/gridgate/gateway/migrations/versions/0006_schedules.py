"""Schedules: job templates fired by a cron or interval trigger, and a record of each firing.

``schedule_runs`` has one row per (schedule, nominal time), unique, written in the same
transaction as the job the firing created (docs/adr/0009-schedules.md). A job records the
schedule and nominal time that fired it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("schedule_id", sa.String(32)))
        batch.add_column(sa.Column("nominal_time", sa.DateTime(timezone=True)))
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("owner_groups", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("vo", sa.String(128), nullable=False),
        sa.Column("group_name", sa.String(255)),
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("workflow_version", sa.String(64), nullable=False),
        sa.Column("facility", sa.String(128), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("execution_duration", sa.Integer(), nullable=False),
        sa.Column("trigger_kind", sa.String(16), nullable=False),
        sa.Column("cron", sa.String(255)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("interval_s", sa.Integer()),
        sa.Column("start", sa.DateTime(timezone=True)),
        sa.Column("end", sa.DateTime(timezone=True)),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("misfire", sa.String(16), nullable=False),
        sa.Column("catch_up_max", sa.Integer(), nullable=False),
        sa.Column("misfire_grace_s", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("paused_reason", sa.Text()),
        sa.Column("next_fire_at", sa.DateTime(timezone=True)),
        sa.Column("last_job_id", sa.String(32)),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index("ix_schedules_owner_created", "schedules", ["owner", "created_at"])
    op.create_index("ix_schedules_due", "schedules", ["paused", "next_fire_at"])
    op.create_table(
        "schedule_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("schedule_id", sa.String(32), nullable=False),
        sa.Column("nominal_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("job_id", sa.String(32)),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_runs_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint("schedule_id", "nominal_time", name="uq_schedule_runs_nominal"),
    )
    op.create_index("ix_schedule_runs_schedule", "schedule_runs", ["schedule_id", "id"])


def downgrade() -> None:
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("nominal_time")
        batch.drop_column("schedule_id")

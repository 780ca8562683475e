"""The gateway's tables. Portable between SQLite and PostgreSQL: no dialect-only types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL keeps them. Both come
    back aware (UTC) so comparisons in services never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements INTEGER PRIMARY KEY; BigInteger elsewhere.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("vo", String(128), nullable=False),
    Column("group_name", String(255)),
    Column("run_id", String(255)),
    Column("workflow_id", String(128), nullable=False),
    Column("workflow_version", String(64), nullable=False),
    Column("facility", String(128), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("creation_time", UTCDateTime(), nullable=False),
    Column("start_time", UTCDateTime()),
    Column("end_time", UTCDateTime()),
    Column("execution_duration", Integer, nullable=False),
    Column("destruction", UTCDateTime()),
    Column("quote", UTCDateTime()),
    Column("error_type", String(16)),
    Column("error_message", Text),
    Column("task_count", Integer, nullable=False),
    Column("finished_outcome", String(16)),
    Column("finished_detail", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("credential_expires_at", UTCDateTime()),
    Column("credential_warned", Boolean, nullable=False, server_default=false()),
    Column("inputs", JSON),
    Column("data_dataset", String(512)),
    Column("callback_token_hash", String(64)),
    # Optimistic concurrency: every unit of work that changes a job bumps it, and only if it
    # still holds the value it read (docs/adr/0007-job-state-concurrency.md).
    Column("version", Integer, nullable=False, server_default="0"),
    Column("stall_reason", Text),
    Column("redrives", Integer, nullable=False, server_default="0"),
    # The schedule that fired the job, and the firing's nominal time (docs/schedules.md).
    Column("schedule_id", String(32)),
    Column("nominal_time", UTCDateTime()),
    # The container image a containerised job runs in, once resolved (its provenance).
    Column("image", JSON),
    # The sequence number of the job's last event: bumped only by a unit of work that emits
    # one, so consumers can tell a missing event from none (docs/adr/0014-job-event-sequence.md).
    Column("event_sequence", Integer, nullable=False, server_default="0"),
    # Where the notifier sends this job's events (its hook), checked at creation; every event
    # of the job carries it (docs/adr/0018-job-notification-url.md).
    Column("notification_url", Text),
    Index("ix_jobs_owner_creation", "owner", "creation_time"),
    Index("ix_jobs_phase_updated", "phase", "updated_at"),
    Index("ix_jobs_phase", "phase"),
    Index("ix_jobs_destruction", "destruction"),
)

tombstones_table = Table(
    "job_tombstones",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("vo", String(128), nullable=False),
    Column("group_name", String(255)),
    Column("facility", String(128), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=False),
    Index("ix_job_tombstones_deleted_at", "deleted_at"),
)

tasks_table = Table(
    "job_tasks",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_index", Integer, primary_key=True),
    Column("facility_job_id", String(255)),
    Column("phase", String(16), nullable=False),
    Column("facility_status", String(64)),
    Column("exit_code", Integer),
    Column("detail", Text),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    # When the monitor saw the state recorded: an older observation arriving late is dropped.
    Column("observed_at", UTCDateTime()),
)

history_table = Table(
    "job_history",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_phase", String(16)),
    Column("to_phase", String(16)),
    Column("source", String(32), nullable=False),
    Column("detail", Text),
    Index("ix_job_history_job", "job_id", "id"),
)

callbacks_table = Table(
    "job_callbacks",
    metadata,
    # One row per accepted callback update: a repeated update finds its row and changes nothing.
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_index", Integer, primary_key=True),
    Column("event", String(16), primary_key=True),
    Column("at", UTCDateTime(), primary_key=True),
)

results_table = Table(
    "job_results",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("adler32", String(8), nullable=False),
    Column("task_index", Integer),
    Column("did", String(512)),
    Column("location", Text),
)

idempotency_table = Table(
    "idempotency_keys",
    metadata,
    # A client's Idempotency-Key: the same owner, key and request answer with the same job.
    Column("owner", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_digest", String(64), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "command" or "event"
    Column("routing_key", String(255), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("message_type", String(128), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

event_journal_table = Table(
    "event_journal",
    metadata,
    # The events of jobs and schedules as published, kept for a while so that a live stream
    # (GET /api/events) can resume after a disconnect (docs/events.md). Written in the unit
    # of work that caused the event, next to its outbox row.
    Column("id", AutoId, primary_key=True, autoincrement=True),
    # PostgreSQL: the writing transaction's id (txid_current()). Readers order by (tx, id)
    # and read only transactions older than every running one, so a row committed late can
    # never land behind a reader's position. SQLite serializes writers: always 0, id order.
    Column("tx", BigInteger, nullable=False, server_default="0"),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("job_id", String(32)),
    Column("schedule_id", String(32)),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_event_journal_position", "tx", "id"),
    Index("ix_event_journal_owner", "owner", "tx", "id"),
    Index("ix_event_journal_job", "job_id", "tx", "id"),
    # Ids never come back after the newest row is pruned: a resume position stays unique.
    sqlite_autoincrement=True,
)

event_journal_pruned_table = Table(
    "event_journal_pruned",
    metadata,
    # One row: the position up to which the journal was pruned. A resume position before it
    # may have lost events (410); one at or after it lost none.
    Column("id", Integer, primary_key=True),
    Column("tx", BigInteger, nullable=False),
    Column("row_id", BigInteger, nullable=False),
)

schedules_table = Table(
    "schedules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), nullable=False),
    # The owner's groups when the schedule was made: firings check credentials and read
    # inputs as the owner, with no token at hand.
    Column("owner_groups", JSON, nullable=False),
    Column("name", String(255)),
    Column("vo", String(128), nullable=False),
    Column("group_name", String(255)),
    Column("workflow_id", String(128), nullable=False),
    Column("workflow_version", String(64), nullable=False),
    Column("facility", String(128), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("execution_duration", Integer, nullable=False),
    Column("trigger_kind", String(16), nullable=False),
    Column("cron", String(255)),
    Column("timezone", String(64)),
    Column("interval_s", Integer),
    Column("start", UTCDateTime()),
    Column("end", UTCDateTime()),
    Column("overlap", String(16), nullable=False),
    Column("misfire", String(16), nullable=False),
    Column("catch_up_max", Integer, nullable=False),
    Column("misfire_grace_s", Integer, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("paused_reason", Text),
    # The nominal time of the next firing; none once the schedule's end is past.
    Column("next_fire_at", UTCDateTime()),
    Column("last_job_id", String(32)),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Optimistic concurrency, as for jobs: the scheduler claims a schedule before it fires.
    Column("version", Integer, nullable=False, server_default="0"),
    # new-data triggers: the dataset or container watched, and the files each job reads.
    Column("data_did", String(512)),
    Column("files_per_job", Integer),
    Index("ix_schedules_owner_created", "owner", "created_at"),
    Index("ix_schedules_due", "paused", "next_fire_at"),
)

schedule_runs_table = Table(
    "schedule_runs",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "schedule_id",
        String(32),
        ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("nominal_time", UTCDateTime(), nullable=False),
    Column("fired_at", UTCDateTime(), nullable=False),
    Column("trigger", String(16), nullable=False),  # "schedule" or "manual"
    Column("outcome", String(16), nullable=False),  # "created" or "skipped"
    Column("reason", Text),
    Column("job_id", String(32)),
    # Exactly once per nominal time: a second writer of the same firing fails here.
    UniqueConstraint("schedule_id", "nominal_time", name="uq_schedule_runs_nominal"),
    Index("ix_schedule_runs_schedule", "schedule_id", "id"),
)

schedule_files_table = Table(
    "schedule_files",
    metadata,
    Column(
        "schedule_id",
        String(32),
        ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("did", String(512), nullable=False),
    # The firing that handed the file to a job (written in that firing's transaction).
    Column("nominal_time", UTCDateTime(), nullable=False),
    Column("job_id", String(32), nullable=False),
    # Each file of a new-data schedule goes to exactly one job.
    PrimaryKeyConstraint("schedule_id", "did", name="pk_schedule_files"),
)

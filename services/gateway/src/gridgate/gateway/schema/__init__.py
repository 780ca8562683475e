"""Tables of the gateway's database (SQLAlchemy Core), shared by stores and migrations."""

from gridgate.gateway.schema.tables import (
    event_journal_pruned_table,
    event_journal_table,
    history_table,
    idempotency_table,
    jobs_table,
    metadata,
    outbox_table,
    results_table,
    schedule_files_table,
    schedule_runs_table,
    schedules_table,
    tasks_table,
    tombstones_table,
)

__all__ = [
    "event_journal_pruned_table",
    "event_journal_table",
    "history_table",
    "idempotency_table",
    "jobs_table",
    "metadata",
    "outbox_table",
    "results_table",
    "schedule_files_table",
    "schedule_runs_table",
    "schedules_table",
    "tasks_table",
    "tombstones_table",
]

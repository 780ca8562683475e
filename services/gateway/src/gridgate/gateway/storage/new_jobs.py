"""New jobs' rows, written together: one statement per table for any number of jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.gateway.schema import idempotency_table
from gridgate.gateway.storage.jobs import INSERT_HISTORY, INSERT_JOB, INSERT_TASK
from gridgate.gateway.storage.journal import insert_journal_rows
from gridgate.gateway.storage.outbox import INSERT_OUTBOX

INSERT_KEY = insert(idempotency_table)


@dataclass
class NewJobRows:
    """Every row one new job's unit of work writes: nothing of it is in the database yet."""

    job: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    """The event journal's rows of the job's events (live streams resume from them)."""
    key: dict[str, Any] | None = None
    """The client's Idempotency-Key, if it sent one."""

    def tasks(self) -> list[dict[str, Any]]:
        job = self.job
        return [
            {"job_id": job["id"], "task_index": i, "phase": job["phase"]}
            for i in range(job["task_count"])
        ]


async def checked_out(connection: AsyncConnection) -> AsyncConnection:
    """``connection``, checked out of the pool now if its unit of work opened it on demand
    (``unit_of_work(on_demand=True)``) and nothing used it yet."""
    if connection.sync_connection is None:
        await connection.start()
    return connection


async def insert_new_jobs(connection: AsyncConnection, batch: list[NewJobRows]) -> None:
    """Insert the rows of ``batch`` in the open transaction (the caller commits).

    Idempotency keys first: a key another transaction holds makes this one wait on it, or
    fail with ``IntegrityError``, before anything else is written.
    """
    keys = [rows.key for rows in batch if rows.key is not None]
    if keys:
        await connection.execute(INSERT_KEY, keys)
    await connection.execute(INSERT_JOB, [rows.job for rows in batch])
    tasks = [task for rows in batch for task in rows.tasks()]
    if tasks:
        await connection.execute(INSERT_TASK, tasks)
    history = [entry for rows in batch for entry in rows.history]
    if history:
        await connection.execute(INSERT_HISTORY, history)
    outbox = [message for rows in batch for message in rows.outbox]
    if outbox:
        await connection.execute(INSERT_OUTBOX, outbox)
    await insert_journal_rows(connection, [entry for rows in batch for entry in rows.journal])


__all__ = ["NewJobRows", "checked_out", "insert_new_jobs"]

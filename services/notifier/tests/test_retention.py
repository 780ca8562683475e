"""Retention deletes finished deliveries, spent job hooks and idle job numbering past the
retention, and nothing else, in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.notifier.schema.tables import (
    deliveries,
    job_sequences,
    sequences_ahead,
    subscriptions,
)
from gridgate.notifier.services.retention import Retention

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RETENTION_S = 30 * 86400.0


def subscription(sub_id: str, created_at: datetime, hook_job_id: str | None) -> dict[str, Any]:
    return {
        "id": sub_id,
        "owner": "alice",
        "url": "https://receiver.example.org/hook",
        "description": "",
        "event_types": [],
        "vos": [],
        "job_ids": [hook_job_id] if hook_job_id else [],
        "schedule_ids": [],
        "sealed_secret": None if hook_job_id else "sealed",
        "enabled": True,
        "created_at": created_at,
        "hook_job_id": hook_job_id,
    }


def delivery(sub_id: str, status: str, began: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "subscription_id": sub_id,
        "event_id": str(uuid.uuid4()),
        "event_type": "org.gridgate.job.completed.v1",
        "subject": "jobs/j",
        "order_major": 1,
        "order_minor": 0,
        "body": "{}",
        "status": status,
        "attempts": 1,
        "next_attempt_at": began,
        "created_at": began,
        "retry_from": began,
    }


async def rows(engine: AsyncEngine, column: Any) -> set[Any]:
    async with engine.connect() as connection:
        return set((await connection.execute(select(column))).scalars())


async def test_only_what_is_past_the_retention_goes(engine: AsyncEngine) -> None:
    old, recent = NOW - 40 * DAY, NOW - 2 * DAY
    plain = subscription("plain", old, None)
    spent_hook = subscription("hook-spent", old, "job-old")
    busy_hook = subscription("hook-busy", old, "job-busy")  # a delivery still pending
    young_hook = subscription("hook-young", recent, "job-young")
    kept = {
        "pending-old": delivery("plain", "pending", old),
        "delivered-recent": delivery("plain", "delivered", recent),
        "failed-recent": delivery("plain", "failed", recent),
        "busy-pending": delivery("hook-busy", "pending", old),
        "young": delivery("hook-young", "delivered", recent),
    }
    gone = {
        "delivered-old": delivery("plain", "delivered", old),
        "failed-old": delivery("plain", "failed", old),
        "spent": delivery("hook-spent", "delivered", old),
    }
    async with engine.begin() as connection:
        await connection.execute(insert(subscriptions), [plain, spent_hook, busy_hook, young_hook])
        await connection.execute(insert(deliveries), [*kept.values(), *gone.values()])
        await connection.execute(
            insert(job_sequences),
            [
                {"subject": "jobs/idle", "contiguous": 2, "ahead": 1, "updated_at": old},
                {"subject": "jobs/live", "contiguous": 1, "ahead": 1, "updated_at": recent},
            ],
        )
        await connection.execute(
            insert(sequences_ahead),
            [{"subject": "jobs/idle", "sequence": 4}, {"subject": "jobs/live", "sequence": 3}],
        )

    pruned = await Retention(engine, RETENTION_S, batch=2).prune(NOW)

    # The spent hook (its delivery goes with it), two finished deliveries, one idle job.
    assert pruned == 1 + 2 + 1
    assert await rows(engine, subscriptions.c.id) == {"plain", "hook-busy", "hook-young"}
    assert await rows(engine, deliveries.c.id) == {d["id"] for d in kept.values()}
    assert await rows(engine, job_sequences.c.subject) == {"jobs/live"}
    assert await rows(engine, sequences_ahead.c.subject) == {"jobs/live"}
    # A second round finds nothing more.
    assert await Retention(engine, RETENTION_S).prune(NOW) == 0

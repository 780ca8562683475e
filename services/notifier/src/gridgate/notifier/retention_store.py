"""What retention deletes: rows of finished deliveries, of job hooks and of job sequences
that nothing has touched for longer than the retention. Each call deletes one bounded batch
in the caller's transaction; callers repeat until a call deletes nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.notifier.models import DeliveryStatus
from gridgate.notifier.schema.tables import (
    deliveries,
    job_sequences,
    sequences_ahead,
    subscriptions,
)


class RetentionStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def delete_finished_deliveries(self, before: datetime, batch: int) -> int:
        """Delivered or given-up deliveries whose last (re)delivery began before ``before``.
        A pending one is never deleted, however old."""
        ids = (
            (
                await self._db.execute(
                    select(deliveries.c.id)
                    .where(
                        deliveries.c.status != DeliveryStatus.PENDING.value,
                        deliveries.c.retry_from < before,
                    )
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if ids:
            await self._db.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
        return len(ids)

    async def delete_spent_hooks(self, before: datetime, batch: int) -> int:
        """Job hooks made before ``before`` with no delivery pending or begun since."""
        recent = exists().where(
            deliveries.c.subscription_id == subscriptions.c.id,
            or_(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.retry_from >= before,
            ),
        )
        spent = (
            select(subscriptions.c.id)
            .where(
                subscriptions.c.hook_job_id.is_not(None),
                subscriptions.c.created_at < before,
                ~recent,
            )
            .limit(batch)
        )
        ids = (await self._db.execute(spent)).scalars().all()
        if not ids:
            return 0
        # The condition again in the delete: an event taken in meanwhile keeps its hook.
        gone = (
            (
                await self._db.execute(
                    delete(subscriptions)
                    .where(subscriptions.c.id.in_(ids), ~recent)
                    .returning(subscriptions.c.id)
                )
            )
            .scalars()
            .all()
        )
        if gone:
            # Explicitly, not only by the foreign key's cascade: SQLite enforces it only
            # when asked.
            await self._db.execute(delete(deliveries).where(deliveries.c.subscription_id.in_(gone)))
        return len(ids)

    async def delete_idle_sequences(self, before: datetime, batch: int) -> int:
        """Jobs whose last event was taken in before ``before``: their numbering state."""
        subjects = (
            (
                await self._db.execute(
                    select(job_sequences.c.subject)
                    .where(job_sequences.c.updated_at < before)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not subjects:
            return 0
        await self._db.execute(
            delete(sequences_ahead).where(sequences_ahead.c.subject.in_(subjects))
        )
        await self._db.execute(
            delete(job_sequences).where(
                and_(job_sequences.c.subject.in_(subjects), job_sequences.c.updated_at < before)
            )
        )
        return len(subjects)

"""Stores: rows of subscriptions and deliveries to models and back. They never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.notifier.models import (
    Delivery,
    DeliveryStatus,
    DueDelivery,
    JobHookSecret,
    OutboxEvent,
    Subscription,
    SubscriptionKind,
    SubscriptionRecord,
)
from gridgate.notifier.schema.tables import (
    deliveries,
    job_sequences,
    notifier_outbox,
    owner_secrets,
    sequences_ahead,
    subscriptions,
)
from gridgate.sql import conflict_insert


def _subscription(row: RowMapping) -> SubscriptionRecord:
    values = dict(row)
    values["kind"] = "job-hook" if values.get("hook_job_id") else "subscription"
    return SubscriptionRecord(
        view=Subscription.model_validate(values),
        owner=row["owner"],
        sealed_secret=row["sealed_secret"],
    )


class SubscriptionStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def insert(self, values: dict[str, Any]) -> None:
        await self._db.execute(insert(subscriptions).values(**values))

    async def add_hook(self, values: dict[str, Any]) -> bool:
        """Insert a job hook unless its job has one already; whether it was inserted."""
        result = await self._db.execute(
            conflict_insert(self._db.dialect, subscriptions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["hook_job_id"])
        )
        return bool(result.rowcount)

    async def count_for_owner(self, owner: str) -> int:
        """The owner's own subscriptions; job hooks come with jobs and do not count."""
        query = (
            select(func.count())
            .select_from(subscriptions)
            .where(subscriptions.c.owner == owner, subscriptions.c.hook_job_id.is_(None))
        )
        return int((await self._db.execute(query)).scalar_one())

    async def get(self, owner: str, subscription_id: str) -> SubscriptionRecord | None:
        query = select(subscriptions).where(
            subscriptions.c.id == subscription_id, subscriptions.c.owner == owner
        )
        row = (await self._db.execute(query)).mappings().first()
        return _subscription(row) if row is not None else None

    async def list_for_owner(
        self, owner: str, kind: SubscriptionKind | None = None, job_id: str | None = None
    ) -> list[SubscriptionRecord]:
        query = (
            select(subscriptions)
            .where(subscriptions.c.owner == owner)
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        )
        if kind == "job-hook":
            query = query.where(subscriptions.c.hook_job_id.is_not(None))
        elif kind == "subscription":
            query = query.where(subscriptions.c.hook_job_id.is_(None))
        if job_id is not None:
            query = query.where(subscriptions.c.hook_job_id == job_id)
        return [_subscription(row) for row in (await self._db.execute(query)).mappings()]

    async def enabled_for_owner(
        self, owner: str, job_id: str | None = None
    ) -> list[SubscriptionRecord]:
        """The owner's enabled subscriptions, and the hook of ``job_id`` if it has one: the
        hooks of the owner's other jobs are not read (an owner may have thousands)."""
        hooks = (
            subscriptions.c.hook_job_id.is_(None)
            if job_id is None
            else or_(subscriptions.c.hook_job_id.is_(None), subscriptions.c.hook_job_id == job_id)
        )
        query = select(subscriptions).where(
            subscriptions.c.owner == owner, subscriptions.c.enabled.is_(True), hooks
        )
        return [_subscription(row) for row in (await self._db.execute(query)).mappings()]

    async def delete(self, owner: str, subscription_id: str) -> bool:
        # Deliveries go first: SQLite enforces the cascade only with foreign keys on.
        await self._db.execute(
            delete(deliveries).where(
                deliveries.c.subscription_id == subscription_id,
                exists().where(
                    subscriptions.c.id == subscription_id, subscriptions.c.owner == owner
                ),
            )
        )
        result = await self._db.execute(
            delete(subscriptions).where(
                subscriptions.c.id == subscription_id, subscriptions.c.owner == owner
            )
        )
        return bool(result.rowcount)

    async def set_enabled(
        self, subscription_id: str, enabled: bool, reason: str | None, at: datetime | None
    ) -> bool:
        """Turn a subscription on or off; False when it already was so."""
        result = await self._db.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id, subscriptions.c.enabled.is_(not enabled))
            .values(enabled=enabled, disabled_reason=reason, disabled_at=at)
        )
        return bool(result.rowcount)


def _delivery(row: RowMapping) -> Delivery:
    values = dict(row)
    if values["status"] != DeliveryStatus.PENDING:
        values["next_attempt_at"] = None
    return Delivery.model_validate(values)


class DeliveryStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert deliveries, skipping those already there (the same event twice)."""
        if not rows:
            return 0
        statement = (
            conflict_insert(self._db.dialect, deliveries)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        )
        result = await self._db.execute(statement)
        return int(result.rowcount or 0)

    async def overtaken(
        self, subscription_ids: Sequence[str], subject: str, major: int, minor: int
    ) -> int:
        """How many later events of ``subject`` already went out to these subscriptions: an
        event arriving after them is out of order (it was late by more than the window)."""
        if not subscription_ids:
            return 0
        query = (
            select(func.count())
            .select_from(deliveries)
            .where(
                deliveries.c.subscription_id.in_(subscription_ids),
                deliveries.c.subject == subject,
                deliveries.c.status == DeliveryStatus.DELIVERED,
                or_(
                    deliveries.c.order_major > major,
                    and_(deliveries.c.order_major == major, deliveries.c.order_minor > minor),
                ),
            )
        )
        return int((await self._db.execute(query)).scalar_one())

    async def claim(
        self,
        now: datetime,
        lease_until: datetime,
        token: str,
        limit: int,
        *,
        order_hold: timedelta = timedelta(0),
    ) -> list[DueDelivery]:
        """Lease up to ``limit`` due deliveries to ``token``.

        Due: pending, its time come, not leased by a live claimer, its subscription enabled,
        no earlier event of the same subject still pending for the same subscription, and,
        for a numbered job event, every smaller number of its job taken in (or the delivery
        older than ``order_hold``: a predecessor that never comes holds it no longer). The
        lease is taken by a conditional UPDATE that re-checks the lease, so two replicas
        never both hold one delivery (PostgreSQL re-evaluates the condition on the row it
        waited for; SQLite runs one writer at a time).
        """
        earlier = deliveries.alias("earlier")
        free = or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now)
        predecessors_in = or_(
            deliveries.c.sequence.is_(None),
            exists().where(
                job_sequences.c.subject == deliveries.c.subject,
                job_sequences.c.contiguous >= deliveries.c.sequence - 1,
            ),
            deliveries.c.created_at <= now - order_hold,
        )
        due = (
            select(deliveries.c.id)
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING,
                deliveries.c.next_attempt_at <= now,
                free,
                subscriptions.c.enabled.is_(True),
                predecessors_in,
                ~exists().where(
                    earlier.c.subscription_id == deliveries.c.subscription_id,
                    earlier.c.subject == deliveries.c.subject,
                    earlier.c.status == DeliveryStatus.PENDING,
                    or_(
                        earlier.c.order_major < deliveries.c.order_major,
                        and_(
                            earlier.c.order_major == deliveries.c.order_major,
                            earlier.c.order_minor < deliveries.c.order_minor,
                        ),
                    ),
                ),
            )
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if self._db.dialect.name == "postgresql":
            due = due.with_for_update(of=deliveries, skip_locked=True)
        await self._db.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(due.scalar_subquery()), free)
            .values(lease_token=token, lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        query = (
            select(
                deliveries.c.id,
                deliveries.c.subscription_id,
                deliveries.c.event_id,
                deliveries.c.body,
                deliveries.c.attempts,
                deliveries.c.retry_from,
                subscriptions.c.url,
                # A job hook signs with its owner's current job-hook secret: a rotation
                # applies to its retries too.
                case(
                    (subscriptions.c.hook_job_id.is_not(None), owner_secrets.c.sealed_secret),
                    else_=subscriptions.c.sealed_secret,
                ).label("sealed_secret"),
                deliveries.c.sequence,
                job_sequences.c.contiguous,
            )
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .outerjoin(owner_secrets, owner_secrets.c.owner == subscriptions.c.owner)
            .outerjoin(job_sequences, job_sequences.c.subject == deliveries.c.subject)
            .where(deliveries.c.lease_token == token)
        )
        return [
            DueDelivery(
                id=row["id"],
                subscription_id=row["subscription_id"],
                event_id=row["event_id"],
                url=row["url"],
                sealed_secret=row["sealed_secret"],
                body=row["body"],
                attempts=row["attempts"],
                created_at=row["retry_from"],
                hold_released=row["sequence"] is not None
                and (row["contiguous"] or 0) < row["sequence"] - 1,
            )
            for row in (await self._db.execute(query)).mappings()
        ]

    async def extend_lease(self, token: str, lease_until: datetime) -> int:
        """Push back the end of ``token``'s lease on what it still holds; how many rows."""
        result = await self._db.execute(
            update(deliveries)
            .where(deliveries.c.lease_token == token)
            .values(lease_until=lease_until)
        )
        return int(result.rowcount or 0)

    async def record(self, delivery_id: str, token: str, values: dict[str, Any]) -> bool:
        """Store an attempt's outcome if ``token`` still holds the lease."""
        result = await self._db.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.lease_token == token)
            .values(
                attempts=deliveries.c.attempts + 1, lease_token=None, lease_until=None, **values
            )
        )
        return bool(result.rowcount)

    async def next_due(self) -> datetime | None:
        query = (
            select(func.min(deliveries.c.next_attempt_at))
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .where(deliveries.c.status == DeliveryStatus.PENDING, subscriptions.c.enabled.is_(True))
        )
        value: datetime | None = (await self._db.execute(query)).scalar_one_or_none()
        return value

    async def list_for_subscription(
        self, subscription_id: str, limit: int, status: DeliveryStatus | None
    ) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.subscription_id == subscription_id)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(deliveries.c.status == status)
        return [_delivery(row) for row in (await self._db.execute(query)).mappings()]

    async def get(self, subscription_id: str, delivery_id: str) -> Delivery | None:
        query = select(deliveries).where(
            deliveries.c.subscription_id == subscription_id, deliveries.c.id == delivery_id
        )
        row = (await self._db.execute(query)).mappings().first()
        return _delivery(row) if row is not None else None

    async def reschedule(
        self, subscription_id: str, now: datetime, delivery_id: str | None = None
    ) -> int:
        """Make deliveries due now with a fresh retry window: one (redelivery on demand,
        whatever its status) or every pending one of the subscription (re-enabling)."""
        condition = [deliveries.c.subscription_id == subscription_id]
        if delivery_id is not None:
            condition.append(deliveries.c.id == delivery_id)
        else:
            condition.append(deliveries.c.status == DeliveryStatus.PENDING)
        result = await self._db.execute(
            update(deliveries)
            .where(*condition)
            .values(
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                retry_from=now,
                lease_token=None,
                lease_until=None,
            )
        )
        return int(result.rowcount or 0)


class SequenceStore:
    """Which numbered events of each job the notifier has taken in.

    A job's row says all of 1..``contiguous`` were; numbers taken in beyond a gap wait in
    ``sequences_ahead`` until the gap fills. Callers run one event per transaction; the
    upsert locks the job's row (PostgreSQL), and SQLite runs one writer at a time.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def take_in(self, subject: str, sequence: int, now: datetime) -> None:
        table = job_sequences
        # The usual case, the next number in order, is this one statement.
        upsert = (
            conflict_insert(self._db.dialect, table)
            .values(subject=subject, contiguous=1 if sequence == 1 else 0, ahead=0, updated_at=now)
            .on_conflict_do_update(
                index_elements=["subject"],
                set_={
                    "contiguous": case(
                        (table.c.contiguous == sequence - 1, sequence), else_=table.c.contiguous
                    ),
                    "updated_at": now,
                },
            )
            .returning(table.c.contiguous, table.c.ahead)
        )
        contiguous, ahead = (await self._db.execute(upsert)).one()
        if contiguous < sequence:
            added = await self._db.execute(
                conflict_insert(self._db.dialect, sequences_ahead)
                .values(subject=subject, sequence=sequence)
                .on_conflict_do_nothing(index_elements=["subject", "sequence"])
            )
            if added.rowcount:
                await self._db.execute(
                    update(table).where(table.c.subject == subject).values(ahead=table.c.ahead + 1)
                )
            return
        if not ahead:
            return
        # A gap just filled: the run of numbers goes on over those that came ahead of it.
        waiting = await self._db.execute(
            select(sequences_ahead.c.sequence)
            .where(sequences_ahead.c.subject == subject, sequences_ahead.c.sequence > contiguous)
            .order_by(sequences_ahead.c.sequence)
        )
        run = contiguous
        for number in waiting.scalars():
            if number != run + 1:
                break
            run = number
        removed = await self._db.execute(
            delete(sequences_ahead).where(
                sequences_ahead.c.subject == subject, sequences_ahead.c.sequence <= run
            )
        )
        await self._db.execute(
            update(table)
            .where(table.c.subject == subject)
            .values(contiguous=run, ahead=table.c.ahead - int(removed.rowcount or 0))
        )

    async def mark_hooked(self, subject: str) -> bool:
        """Record that ``subject``'s hook was made; False if it was before (then none is
        made again, even if its owner deleted it). Called after :meth:`take_in`, which
        made the row and holds its lock."""
        result = await self._db.execute(
            update(job_sequences)
            .where(job_sequences.c.subject == subject, job_sequences.c.hooked.is_(False))
            .values(hooked=True)
        )
        return bool(result.rowcount)


class OwnerSecretStore:
    """Each owner's job-hook signing secret, sealed."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def get(self, owner: str) -> JobHookSecret | None:
        query = select(owner_secrets.c.created_at, owner_secrets.c.shown_at).where(
            owner_secrets.c.owner == owner
        )
        row = (await self._db.execute(query)).first()
        if row is None:
            return None
        return JobHookSecret(created_at=row.created_at, shown=row.shown_at is not None)

    async def exists(self, owner: str) -> bool:
        query = select(owner_secrets.c.owner).where(owner_secrets.c.owner == owner)
        return (await self._db.execute(query)).first() is not None

    async def add_unless_present(self, owner: str, sealed: str, now: datetime) -> None:
        """Store a secret the owner was not shown, unless they have one (first need)."""
        await self._db.execute(
            conflict_insert(self._db.dialect, owner_secrets)
            .values(owner=owner, sealed_secret=sealed, created_at=now, shown_at=None)
            .on_conflict_do_nothing(index_elements=["owner"])
        )

    async def replace(self, owner: str, sealed: str, now: datetime) -> None:
        """Store a new secret that is being shown to its owner (creation or rotation)."""
        statement = conflict_insert(self._db.dialect, owner_secrets).values(
            owner=owner, sealed_secret=sealed, created_at=now, shown_at=now
        )
        await self._db.execute(
            statement.on_conflict_do_update(
                index_elements=["owner"],
                set_={"sealed_secret": sealed, "created_at": now, "shown_at": now},
            )
        )


class NotifierOutboxStore:
    """The notifier's own events, written with the change they announce, then relayed."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, message: OutboxEvent, now: datetime) -> None:
        await self._db.execute(
            insert(notifier_outbox).values(
                message_id=message.message_id,
                message_type=message.message_type,
                routing_key=message.routing_key,
                body=message.body,
                created_at=now,
            )
        )

    async def oldest(self, limit: int) -> list[tuple[int, OutboxEvent]]:
        """The oldest rows, locked against other replicas (PostgreSQL; SQLite has one writer)."""
        query = select(notifier_outbox).order_by(notifier_outbox.c.id).limit(limit)
        if self._db.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [
            (r.id, OutboxEvent(r.message_id, r.message_type, r.routing_key, r.body))
            for r in await self._db.execute(query)
        ]

    async def remove(self, ids: Sequence[int]) -> None:
        await self._db.execute(delete(notifier_outbox).where(notifier_outbox.c.id.in_(ids)))

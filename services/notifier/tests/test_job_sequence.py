"""Order per job by the gateway's gap-free event numbers, not by a time window: two notifier
processes on one database and one queue, events of each job published out of order with
the earliest one 3 s late (twelve times ``order_window_s``), on SQLite and PostgreSQL
(docs/adr/0014-job-event-sequence.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from receiver import Receiver
from replicas import Notifiers

from gridgate.broker import Publisher, connect
from gridgate.broker.publisher import cloud_event
from gridgate.contracts import EVENT_SOURCE, JobEvent, Phase, event_type_for, routing_key_for
from gridgate.contracts.events import SEQUENCE_EXTENSION
from gridgate.notifier.guard import OutboundPolicy
from gridgate.notifier.models import SubscriptionCreate
from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.schema.migrate import upgrade_schema
from gridgate.notifier.sealing import SecretBox
from gridgate.notifier.services.subscriptions import SubscriptionService
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    rabbitmq_vhost,
)

JOBS = 6
LATE_S = 3.0
PHASES = (Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED)
COMPLETED = "org.gridgate.job.completed.v1"


def numbered_event(owner: str, job_id: str, phase: Phase, sequence: int) -> Any:
    """A job event as the gateway emits it: job_version bumps by claims the notifier never
    sees (here by 3 per step), the sequence by one per event."""
    data = JobEvent(
        job_id=job_id,
        owner=owner,
        vo="cta",
        phase=phase,
        occurred_at=datetime.now(UTC),
        source="test",
        workflow_id="hello-world",
        job_version=3 * sequence,
        sequence=sequence,
    )
    return cloud_event(
        event_type=event_type_for(phase),
        source=EVENT_SOURCE,
        subject=f"jobs/{job_id}",
        data=data.model_dump(mode="json"),
        extensions={SEQUENCE_EXTENSION: sequence},
    )


async def publish(broker_url: str, events: list[Any]) -> None:
    connection = await connect(broker_url)
    publisher = await Publisher.open(connection)
    try:
        for event in events:
            word = event.get_type()[len("org.gridgate.job.") : -len(".v1")]
            await publisher.publish_event(routing_key_for("cta", word), event)
    finally:
        await publisher.close()
        await connection.close()


async def subscribe(database_url: str, key: str, owner: str, receiver: Receiver, **filters: Any):
    """Subscriptions made straight through the service (the HTTP route is tested elsewhere)."""
    engine = create_engine(database_url)
    try:
        await upgrade_schema(engine)
        service = SubscriptionService(
            engine, OutboundPolicy.build(True, ["127.0.0.1/32"]), SecretBox(key), max_per_owner=9
        )
        for name, filter_ in filters.items():
            await service.create(owner, SubscriptionCreate(url=receiver.url(name), **filter_))
    finally:
        await engine.dispose()


async def database(database_kind: str, tmp_path: Path) -> tuple[str | None, str]:
    if database_kind == "postgresql":
        return await create_postgres_database()
    return None, f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"


async def test_a_job_event_published_late_still_goes_first(
    database_kind: str, tmp_path: Path
) -> None:
    name, database_url = await database(database_kind, tmp_path)
    key = Fernet.generate_key().decode()
    receiver = Receiver()
    await receiver.start()
    owner = f"seq-{uuid.uuid4().hex[:6]}"
    everything = [f"{owner}-all-{i}" for i in range(3)]
    done_only = f"{owner}-completed"
    notifiers = None
    try:
        with rabbitmq_vhost() as broker_url:
            try:
                await subscribe(
                    database_url,
                    key,
                    owner,
                    receiver,
                    **{n: {} for n in everything},
                    **{done_only: {"event_types": [COMPLETED]}},
                )
                # A hold far beyond the test: any release by it would show in the metric.
                notifiers = Notifiers(database_url, broker_url, key, order_hold_s="120")
                await notifiers.start(2)
                jobs = [f"job-{uuid.uuid4().hex[:8]}" for _ in range(JOBS)]
                events = {
                    job: [numbered_event(owner, job, p, n) for n, p in enumerate(PHASES, start=1)]
                    for job in jobs
                }
                # Each job's last two events first, the last one before the other; its first
                # event 3 s later, as another gateway replica's slow relay would.
                await publish(broker_url, [e for job in jobs for e in events[job][:0:-1]])
                await asyncio.sleep(LATE_S)
                published_first = time.monotonic()
                await publish(broker_url, [events[job][0] for job in jobs])
                for name_ in everything:
                    await receiver.wait_for(name_, JOBS * len(PHASES), timeout_s=60)
                # The filtered subscription got each job's completion once its predecessors
                # were taken in, without a delivery of them to wait for and without the hold.
                await receiver.wait_for(done_only, JOBS, timeout_s=60)
                waited = time.monotonic() - published_first
                await asyncio.sleep(1.0)  # a repeat or a stray event would have arrived by now
                released = await notifiers.metric("gridgate_webhook_order_hold_released_total")
                late = await notifiers.metric("gridgate_webhook_out_of_order_total")
            finally:
                # Before the vhost goes: a replica that lost its broker waits for it.
                if notifiers is not None:
                    await notifiers.stop()
    finally:
        await receiver.stop()
        if name:
            await drop_postgres_database(name)
    for name_ in everything:
        got: dict[str, list[int]] = {}
        for received in receiver.received[name_]:
            data = received.event["data"]
            got.setdefault(data["job_id"], []).append(data["sequence"])
        assert got == {job: [1, 2, 3] for job in jobs}, name_
    completed = [r.event for r in receiver.received[done_only]]
    assert sorted(e["data"]["job_id"] for e in completed) == sorted(jobs)
    assert {e["type"] for e in completed} == {COMPLETED}
    assert all(e[SEQUENCE_EXTENSION] == 3 for e in completed)
    assert released == 0 and late == 0
    print(f"\n{database_kind}: late first events in, all delivered in order {waited:.1f} s later")


async def test_a_predecessor_that_never_comes_holds_its_job_for_order_hold_s(
    database_kind: str, tmp_path: Path
) -> None:
    name, database_url = await database(database_kind, tmp_path)
    key = Fernet.generate_key().decode()
    receiver = Receiver()
    await receiver.start()
    owner = f"hold-{uuid.uuid4().hex[:6]}"
    notifiers = None
    try:
        with rabbitmq_vhost() as broker_url:
            try:
                await subscribe(database_url, key, owner, receiver, **{owner: {}})
                notifiers = Notifiers(database_url, broker_url, key, order_hold_s="2")
                await notifiers.start(1)
                job = f"job-{uuid.uuid4().hex[:8]}"
                first, second, third = (
                    numbered_event(owner, job, p, n) for n, p in enumerate(PHASES, start=1)
                )
                started = time.monotonic()
                await publish(broker_url, [third, second])  # the first one is lost upstream
                got = await receiver.wait_for(owner, 2, timeout_s=30)
                held = time.monotonic() - started
                assert [r.event["data"]["sequence"] for r in got] == [2, 3]
                assert await notifiers.metric("gridgate_webhook_order_hold_released_total") >= 1
                # Should it come after all, it is delivered, late and counted as such.
                await publish(broker_url, [first])
                got = await receiver.wait_for(owner, 3, timeout_s=30)
                assert got[2].event["data"]["sequence"] == 1
                await asyncio.sleep(0.5)
                assert await notifiers.metric("gridgate_webhook_out_of_order_total") >= 1
            finally:
                # Before the vhost goes: a replica that lost its broker waits for it.
                if notifiers is not None:
                    await notifiers.stop()
    finally:
        await receiver.stop()
        if name:
            await drop_postgres_database(name)
    assert held >= 2.0  # held for order_hold_s, not sent at once

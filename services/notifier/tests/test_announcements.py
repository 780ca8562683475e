"""The ``subscription.disabled`` event is not lost: it is written to the notifier's outbox in
the transaction that disables the subscription, and relayed at least once, even when the
notifier is SIGKILLed between publishing it and deleting its outbox row (crash point
``notifier-outbox-published``), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import orjson
from cryptography.fernet import Fernet
from receiver import Receiver
from replicas import Notifiers
from sqlalchemy import func, select
from test_job_sequence import database, numbered_event, publish, subscribe

from gridgate.broker import connect
from gridgate.contracts import Phase
from gridgate.contracts.subscriptions import SUBSCRIPTION_DISABLED_TYPE
from gridgate.contracts.topology import EVENTS_EXCHANGE
from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.schema.tables import notifier_outbox, subscriptions
from gridgate.testing.services import drop_postgres_database, rabbitmq_vhost


async def outbox_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(notifier_outbox)
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def test_a_kill_after_publishing_the_disabled_event_publishes_it_again(
    database_kind: str, tmp_path: Path
) -> None:
    name, database_url = await database(database_kind, tmp_path)
    key = Fernet.generate_key().decode()
    receiver = Receiver()
    await receiver.start()
    owner = f"gone-{uuid.uuid4().hex[:6]}"
    receiver.plans[owner] = [500]
    notifiers = None
    try:
        with rabbitmq_vhost() as broker_url:
            try:
                await subscribe(database_url, key, owner, receiver, **{owner: {}})
                notifiers = Notifiers(
                    database_url,
                    broker_url,
                    key,
                    retry_base_s="0.2",
                    retry_max_s="0.4",
                    give_up_after_s="1.5",
                )
                doomed = await notifiers.start(1, crash="notifier-outbox-published")
                # Bound once the notifier declared the exchanges.
                connection = await connect(broker_url)
                channel = await connection.channel()
                watch = await channel.declare_queue(exclusive=True)
                await watch.bind(EVENTS_EXCHANGE, routing_key="subscription.#")
                await publish(broker_url, [numbered_event(owner, "j-1", Phase.QUEUED, 1)])
                # It disables the subscription, publishes the announcement, and dies before
                # deleting it from its outbox.
                async with asyncio.timeout(60):
                    while doomed.poll() is None:  # noqa: ASYNC110 - a process, no event
                        await asyncio.sleep(0.1)
                assert doomed.returncode == -signal.SIGKILL
                first = await watch.get(timeout=10)
                assert await outbox_rows(database_url) == 1
                # Started again, as a supervisor would: the row is published again, then deleted.
                await notifiers.start(1)
                second = await watch.get(timeout=30)
                async with asyncio.timeout(30):
                    while await outbox_rows(database_url):  # noqa: ASYNC110 - a table, no event
                        await asyncio.sleep(0.1)
                engine = create_engine(database_url)
                async with engine.connect() as db:
                    query = select(subscriptions.c.enabled, subscriptions.c.disabled_reason)
                    enabled, reason = (await db.execute(query)).one()
                await engine.dispose()
                await channel.close()
                await connection.close()
            finally:
                # Before the vhost goes: a replica that lost its broker waits for it.
                if notifiers is not None:
                    await notifiers.stop()
    finally:
        await receiver.stop()
        if name:
            await drop_postgres_database(name)
    announced = [orjson.loads(first.body), orjson.loads(second.body)]
    # At least once: the same event twice, with one id to de-duplicate on.
    assert announced[0] == announced[1]
    assert announced[0]["type"] == SUBSCRIPTION_DISABLED_TYPE
    assert announced[0]["data"]["owner"] == owner
    assert enabled is False and "HTTP 500" in reason
    assert announced[0]["data"]["reason"] == reason

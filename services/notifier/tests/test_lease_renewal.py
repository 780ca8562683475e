"""A live claimer keeps its lease for as long as its round takes: a second deliverer on the
same database never sends a delivery whose first send is still waiting for its answer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
from cloudevents.core.formats.json import JSONFormat
from cryptography.fernet import Fernet
from receiver import Receiver
from test_webhooks import job_event

from gridgate.contracts import Phase
from gridgate.notifier.guard import OutboundPolicy, guarded_client
from gridgate.notifier.models import SubscriptionCreate
from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.schema.migrate import upgrade_schema
from gridgate.notifier.sealing import SecretBox
from gridgate.notifier.services.delivery import Deliverer, RetryPolicy
from gridgate.notifier.services.intake import EventIntake
from gridgate.notifier.services.subscriptions import SubscriptionService
from gridgate.testing.services import create_postgres_database, drop_postgres_database

LEASE_S = 1.0  # the receiver answers after 3 s: three lease lengths


async def test_a_slow_answer_is_not_sent_twice_by_a_second_deliverer(
    database_kind: str, tmp_path: Path
) -> None:
    database_name = None
    if database_kind == "postgresql":
        database_name, database_url = await create_postgres_database()
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    receiver = Receiver()
    await receiver.start()
    engine = create_engine(database_url)
    policy = OutboundPolicy.build(True, ["127.0.0.1/32"])
    box = SecretBox(Fernet.generate_key().decode())
    clients = [guarded_client(policy, 10.0) for _ in range(2)]
    try:
        await upgrade_schema(engine)
        owner = f"lease-{uuid.uuid4().hex[:6]}"
        receiver.plans[owner] = ["slow-ok", 200]
        service = SubscriptionService(engine, policy, box, max_per_owner=10)
        await service.create(owner, SubscriptionCreate(url=receiver.url(owner)))
        event = job_event(owner, "job-1", Phase.QUEUED, 2)
        envelope = orjson.loads(JSONFormat().write(event))
        await EventIntake(engine, order_window_s=0)(envelope)
        retry = RetryPolicy(base_s=0.2, max_s=0.4, give_up_after_s=60)
        first, second = (
            Deliverer(
                engine,
                http,
                box,
                retry,
                lease_s=LEASE_S,
                batch=8,
                concurrency=8,
                max_response_bytes=1024,
            )
            for http in clients
        )
        slow_round = asyncio.create_task(first.run_round())
        await receiver.wait_for(owner, 1)
        # While the first round waits for its answer, the second deliverer keeps looking.
        claimed_by_second = 0
        while not slow_round.done():
            claimed_by_second += await second.run_round()
            await asyncio.sleep(0.1)
        assert await slow_round == 1
        assert claimed_by_second == 0
        assert receiver.calls[owner] == 1
        subscription = (await service.list_for(owner))[0]
        deliveries = await service.deliveries(owner, subscription.id, limit=10, status=None)
        assert [(d.status, d.attempts) for d in deliveries] == [("delivered", 1)]
    finally:
        for http in clients:
            await http.aclose()
        await engine.dispose()
        await receiver.stop()
        if database_name:
            await drop_postgres_database(database_name)

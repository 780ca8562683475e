"""Job events reach any subscriber as CloudEvents; the outbox survives a crash before publish."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aio_pika
from pydantic import SecretStr

from gridgate.broker import Publisher, connect, declare_topology
from gridgate.contracts import COMMAND_ADAPTER, EVENTS_EXCHANGE, SUBMITTER_QUEUE, SubmitJob
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.factory import ProcessContext, job_policy, unit_of_work
from gridgate.gateway.relay import OutboxRelay
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.jobs import JobRequest
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.iam.identity import Identity
from gridgate.testing.services import rabbitmq_vhost
from gridgate.workflows import WorkflowCatalogue

from .test_end_to_end import run_to_end


async def test_every_phase_change_is_a_cloudevent_on_the_topic_exchange(api, stack) -> None:
    connection = await aio_pika.connect(stack.broker_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="job.cta.#")
    received: list[tuple[str, dict]] = []

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append((message.routing_key or "", json.loads(message.body)))

    await queue.consume(collect, no_ack=True)
    job = await run_to_end(api("events-user"), {"workflow": "hello-world"})
    # The relay publishes after the commit: on a loaded machine that can take seconds. The
    # stack is shared, so another test's job may complete meanwhile: wait for this one's.
    for _ in range(300):
        if any(
            key.endswith(".completed") and body["data"]["job_id"] == job["jobId"]
            for key, body in received
        ):
            break
        await asyncio.sleep(0.1)
    await connection.close()

    mine = [(key, body) for key, body in received if body["data"]["job_id"] == job["jobId"]]
    keys = [key for key, _ in mine]
    assert keys == [
        "job.cta.queued",
        "job.cta.executing",
        "job.cta.results_staged",
        "job.cta.completed",
    ]
    for _, body in mine:
        assert body["specversion"] == "1.0"
        assert body["source"] == "/gridgate/gateway"
        assert body["subject"] == f"jobs/{job['jobId']}"
        assert body["type"].startswith("org.gridgate.job.")
        assert body["data"]["owner"] == "events-user"
    assert mine[-1][1]["type"] == "org.gridgate.job.completed.v1"
    assert mine[-1][1]["data"]["previous_phase"] == "EXECUTING"
    # One job's events carry their order: results_staged and completed come from one
    # change of the job (one version), told apart by their ordinals.
    order = [(body["data"]["job_version"], body["data"]["ordinal"]) for _, body in mine]
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert order[2][0] == order[3][0] and (order[2][1], order[3][1]) == (0, 1)
    # And their number: 1, 2, 3, 4, also as the CloudEvents extension attribute.
    assert [body["data"]["sequence"] for _, body in mine] == [1, 2, 3, 4]
    assert [body["jobsequence"] for _, body in mine] == [1, 2, 3, 4]


ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))


async def offline_context(tmp_path: Path) -> ProcessContext:
    """A gateway's process context on SQLite with no relay running: the tests drive one."""
    settings = GatewaySettings(database_url=SecretStr(f"sqlite+aiosqlite:///{tmp_path}/g.db"))
    engine = create_engine(settings.database_url.get_secret_value())
    await upgrade_schema(engine)
    return ProcessContext(
        settings=settings,
        engine=engine,
        workflows=WorkflowCatalogue.shipped(),
        facilities=FacilityCatalogue.load(),
        notifier=PhaseNotifier(),
        relay=None,
        policy=job_policy(settings, sys.executable),
    )


async def create_job(context: ProcessContext) -> str:
    async with unit_of_work(context) as factory:
        return await factory.job_service().create_job(
            ALICE, JobRequest(workflow="hello-world", run=True)
        )


async def test_commands_committed_before_a_crash_are_published_after_restart(
    tmp_path: Path,
) -> None:
    context = await offline_context(tmp_path)
    engine = context.engine
    # The gateway commits the job and its outbox rows, then "crashes" before any publish.
    job_id = await create_job(context)
    with rabbitmq_vhost() as url:
        connection = await connect(url)
        channel = await connection.channel()
        await declare_topology(channel)
        queue = await channel.get_queue(SUBMITTER_QUEUE)
        assert (await queue.get(fail=False)) is None

        # A new gateway process starts: its relay finds the rows and publishes them.
        publisher = await Publisher.open(connection)
        relay = OutboxRelay(engine, publisher)
        assert await relay.relay_once() == 2  # the submit command and the 'queued' event
        assert await relay.relay_once() == 0  # nothing twice
        message = await queue.get(fail=False)
        assert message is not None
        command = COMMAND_ADAPTER.validate_json(message.body)
        assert isinstance(command, SubmitJob)
        assert command.job_id == job_id
        assert command.tasks[0].argv[0] == sys.executable
        assert (await queue.get(fail=False)) is None
        await publisher.close()
        await connection.close()
    await engine.dispose()


async def test_a_wake_up_during_a_relay_round_is_not_lost(tmp_path: Path) -> None:
    context = await offline_context(tmp_path)
    later: list[str] = []
    with rabbitmq_vhost() as url:
        connection = await connect(url)
        channel = await connection.channel()
        await declare_topology(channel)
        queue = await channel.get_queue(SUBMITTER_QUEUE)
        publisher = await Publisher.open(connection)
        # Idle, the relay would look again only after a minute.
        relay = OutboxRelay(context.engine, publisher, idle_poll_s=60)
        publish_many = publisher.publish_many

        async def publishing(messages: Any) -> None:
            # While the first round publishes, another job is committed and the relay woken,
            # as a POST's commit does.
            if not later:
                later.append(await create_job(context))
                relay.wake()
            await publish_many(messages)

        publisher.publish_many = publishing  # type: ignore[method-assign]
        first = await create_job(context)
        relay.start()
        try:
            submitted = []
            async with asyncio.timeout(30):  # well under the minute of the idle poll
                while len(submitted) < 2:
                    message = await queue.get(fail=False)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    submitted.append(COMMAND_ADAPTER.validate_json(message.body).job_id)
            assert submitted == [first, *later]
        finally:
            await relay.stop()
            await publisher.close()
            await connection.close()
    await context.engine.dispose()

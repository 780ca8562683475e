"""Exchanges and queues, declared idempotently by every service at start."""

from __future__ import annotations

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from gridgate.contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    GATEWAY_REPORTS_QUEUE,
    RESULTS_QUEUE,
    RETRY_EXCHANGE,
    SUBMITTER_QUEUE,
)

WORK_QUEUES = (SUBMITTER_QUEUE, RESULTS_QUEUE, GATEWAY_REPORTS_QUEUE)


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dead"


def parked_queue_name(queue: str) -> str:
    """Where the gateway keeps dead letters it has handled, for an operator to re-drive."""
    return f"{queue}.parked"


def retry_queue_name(queue: str) -> str:
    return f"{queue}.retry"


async def declare_topology(channel: AbstractChannel) -> None:
    """Declare every exchange and durable queue; safe to call from each service at start.

    Each work queue dead-letters to ``<queue>.dead``; the gateway fails the job of each dead
    letter and moves it to ``<queue>.parked``, for an operator (docs/operations.md). Retries
    wait in ``<queue>.retry`` for their per-message expiration, then dead-letter back to the
    work queue: a delayed retry without a plugin.
    """
    events = await channel.declare_exchange(EVENTS_EXCHANGE, ExchangeType.TOPIC, durable=True)
    del events
    commands = await channel.declare_exchange(COMMANDS_EXCHANGE, ExchangeType.DIRECT, durable=True)
    dead = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT, durable=True)
    retry = await channel.declare_exchange(RETRY_EXCHANGE, ExchangeType.DIRECT, durable=True)
    for name in WORK_QUEUES:
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": name,
            },
        )
        await queue.bind(commands, routing_key=name)
        dlq = await channel.declare_queue(dead_letter_queue_name(name), durable=True)
        await dlq.bind(dead, routing_key=name)
        # Bound to nothing: only the dead-letter watcher puts messages there.
        await channel.declare_queue(parked_queue_name(name), durable=True)
        waiting = await channel.declare_queue(
            retry_queue_name(name),
            durable=True,
            arguments={
                "x-dead-letter-exchange": COMMANDS_EXCHANGE,
                "x-dead-letter-routing-key": name,
            },
        )
        await waiting.bind(retry, routing_key=name)

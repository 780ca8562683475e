"""Connecting to RabbitMQ, failing fast with advice when it is not there."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractRobustConnection

START_ADVICE = (
    "RabbitMQ is not reachable at {where}. Start it with 'rabbitmq-server -detached' "
    "(or 'docker compose up -d rabbitmq'), or point GRIDGATE_BROKER_URL at a running broker."
)


class BrokerUnreachableError(RuntimeError):
    """RabbitMQ did not answer within the connect timeout."""


def _where(url: str) -> str:
    # Never echo the password part of the URL.
    tail = url.split("@", 1)[-1]
    return tail.split("/", 1)[0] or url


async def connect(url: str, *, timeout_s: float = 8.0) -> AbstractRobustConnection:
    """Open a robust connection that reconnects by itself after the first success.

    Parameters
    ----------
    url
        AMQP URL.
    timeout_s
        How long the first connection may take before :class:`BrokerUnreachableError`.
    """
    try:
        return await asyncio.wait_for(aio_pika.connect_robust(url, timeout=timeout_s), timeout_s)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
        raise BrokerUnreachableError(START_ADVICE.format(where=_where(url))) from exc

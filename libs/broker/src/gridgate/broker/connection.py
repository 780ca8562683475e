"""Connecting to RabbitMQ, failing fast with advice when it is not there."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection

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


def is_connected(connection: AbstractConnection) -> bool:
    """Whether the connection can carry messages now.

    A robust connection is not *closed* while it reconnects (``is_closed`` only turns true
    after :meth:`close`), so readiness must look at the live transport instead: aio-pika
    clears ``connected`` when the transport drops and sets it again once it is back.

    Parameters
    ----------
    connection
        A connection from :func:`connect` (or any aio-pika connection).
    """
    if connection.is_closed or not connection.connected.is_set():
        return False
    transport = connection.transport
    return transport is not None and not transport.connection.is_closed

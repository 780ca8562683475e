"""Connecting to RabbitMQ, failing fast with advice when it is not there."""

from __future__ import annotations

import asyncio

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractRobustConnection

log = structlog.get_logger(__name__)

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


async def connect_when_up(
    url: str, *, first_delay_s: float = 1.0, max_delay_s: float = 10.0
) -> AbstractRobustConnection:
    """:func:`connect`, tried again with back-off until the broker answers.

    For the services: one started while the broker is down (restarted by its supervisor in
    the middle of an outage, say) waits for it instead of exiting, as a running service
    rides out the outage on its robust connection. Cancel the call to give up.
    """
    delay = first_delay_s
    while True:
        try:
            return await connect(url)
        except BrokerUnreachableError as exc:
            log.warning("broker unreachable; trying again", reason=str(exc), retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(max_delay_s, delay * 2)


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

"""Stopping without a broker: the steps of a stop that talk to the broker (cancelling a
consumer, closing a channel) are bounded in time.

A robust channel waits for its connection to come back before it does anything, so during
an outage ``await channel.close()`` waits for ever, and a process asked to stop would hang
until it is killed. Nothing is lost by not waiting: with the connection gone, the broker has
already dropped the channel, its consumers and its unacknowledged messages (requeued).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

import structlog
from aio_pika.abc import AbstractConnection

from gridgate.broker.connection import is_connected
from gridgate.broker.errors import BROKER_ERRORS

log = structlog.get_logger(__name__)

BROKER_STEP_TIMEOUT_S = 5.0
"""A step of stopping that needs the broker waits this long at most."""


async def stop_step(
    failed: str,
    step: Awaitable[Any],
    *,
    connection: AbstractConnection | None = None,
    **context: Any,
) -> None:
    """Await ``step`` for at most :data:`BROKER_STEP_TIMEOUT_S`; skip it at once when
    ``connection`` is known to be down. A step that does not complete is logged as
    ``failed`` and never raised: stopping goes on."""
    if connection is not None and not is_connected(connection):
        if inspect.iscoroutine(step):
            step.close()  # never awaited, on purpose
        log.warning(f"{failed}: the broker connection is down", **context)
        return
    try:
        async with asyncio.timeout(BROKER_STEP_TIMEOUT_S):
            await step
    except TimeoutError as exc:
        log.warning(failed, error=repr(exc), **context)
    except BROKER_ERRORS as exc:
        log.warning(failed, error=repr(exc), **context)


__all__ = ["BROKER_STEP_TIMEOUT_S", "stop_step"]

"""Telling a broker outage apart from a failure of the work itself.

A broker or connection failure says nothing about the message: the work may well have been
done (handlers are idempotent by design), only the report or the acknowledgement could not
reach RabbitMQ. Such a message must come back, never be dead-lettered.
"""

from __future__ import annotations

import errno
import socket
from typing import Final

from aiormq.exceptions import AMQPError, ChannelInvalidStateError

from gridgate.core.errors import TransientError


class BrokerUnavailableError(TransientError):
    """RabbitMQ did not take a publish (connection lost, not back in time, not confirmed)."""


BROKER_ERRORS: Final[tuple[type[BaseException], ...]] = (
    BrokerUnavailableError,
    # aiormq's root: connection and channel closes, nacked or returned publishes.
    AMQPError,
    # A RuntimeError, not an AMQPError: raised using a channel that closed under us.
    ChannelInvalidStateError,
)
"""What aio-pika and our publisher raise when the broker, not the work, failed."""

NETWORK_ERRNOS: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)


def is_broker_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of RabbitMQ or of the connection to it."""
    return isinstance(exc, BROKER_ERRORS)


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a network failure (of any peer) that a later attempt may not meet.

    Not every :class:`OSError`: a missing file or a full disk is no network error and must
    not be retried as one.
    """
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS

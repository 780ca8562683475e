"""Leases held through the broker: an exclusive queue per name.

RabbitMQ lets one connection at a time declare an exclusive queue of a given name; any other
connection is refused with ``RESOURCE_LOCKED``, and the queue goes away with the connection
that owns it. So "the queue exists" is a lease whose holder is a live connection: released
by deleting the queue, and taken over as soon as the holder's process dies (the kernel closes
its socket, even after SIGKILL) or, after a network partition, once the broker's heartbeat
gives the connection up. Nothing is written to disk and nothing needs expiry times.

A lease is an optimisation, not a guarantee of mutual exclusion: after a partition the old
holder may still be working while a new one starts. Use it only where doing the work twice is
wasteful but harmless (an image build whose result is content-addressed, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractRobustChannel
from aiormq.exceptions import ChannelLockedResource

from gridgate.broker.errors import BrokerUnavailableError

log = structlog.get_logger(__name__)
PREFIX = "gridgate.lease."


@dataclass
class Lease:
    """A held lease; :meth:`release` it when the work is done."""

    name: str
    channel: AbstractChannel

    async def release(self) -> None:
        """Give the lease up. A lost connection has given it up already."""
        try:
            await self.channel.queue_delete(PREFIX + self.name)
        except Exception as exc:  # the lease went with the connection anyway
            log.warning("lease release failed", lease=self.name, reason=str(exc))
        finally:
            await _close(self.channel)


class BrokerLeases:
    """Takes named leases on one broker connection (a process holds each name at most once).

    Parameters
    ----------
    connection
        The process's connection; its lifetime is the lifetime of the leases taken on it.
    """

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection

    async def try_take(self, name: str) -> Lease | None:
        """The lease ``name`` if no other connection holds it, else ``None``.

        Raises
        ------
        BrokerUnavailableError
            The broker did not answer.
        """
        try:
            channel = await self.connection.channel()
        except Exception as exc:
            raise BrokerUnavailableError(f"no channel for the lease {name}: {exc}") from exc
        try:
            if isinstance(channel, AbstractRobustChannel):
                # robust=False: after a reconnection the process must not take the lease back
                # behind the back of whoever took it over meanwhile.
                await channel.declare_queue(PREFIX + name, exclusive=True, robust=False)
            else:
                await channel.declare_queue(PREFIX + name, exclusive=True)
        except ChannelLockedResource:
            await _close(channel)
            return None
        except Exception as exc:
            await _close(channel)
            raise BrokerUnavailableError(f"the lease {name} could not be taken: {exc}") from exc
        return Lease(name, channel)


async def _close(channel: AbstractChannel) -> None:
    try:
        await channel.close()
    except Exception as exc:  # a channel the broker closed is closed
        log.debug("lease channel close", reason=str(exc))


__all__ = ["BrokerLeases", "Lease"]

"""A queue worker: topology, a confirmed publisher and a consumer, started and stopped as one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from aio_pika.abc import AbstractRobustConnection
from pydantic import TypeAdapter

from gridgate.broker.connection import is_connected
from gridgate.broker.consumer import Consumer
from gridgate.broker.lifecycle import serve_connected
from gridgate.broker.publisher import Publisher
from gridgate.broker.topology import declare_topology

M = TypeVar("M")
Handler = Callable[[M], Awaitable[None]]
UsageReporter = Callable[[M, str], Awaitable[None]]


class QueueWorker(Generic[M]):
    """Consumes one queue with handlers built around a publisher.

    Parameters
    ----------
    build
        Given the worker's publisher, returns the message handler and the usage-error reporter.
    closing
        Called after the consumer and publisher stop: the clients the handlers used.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue: str,
        adapter: TypeAdapter[M],
        build: Callable[[Publisher], tuple[Handler[M], UsageReporter[M]]],
        *,
        prefetch: int = 8,
        closing: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.connection = connection
        self.closing = list(closing)
        self.queue = queue
        self.adapter = adapter
        self.build = build
        self.prefetch = prefetch
        self.consumer: Consumer[M] | None = None
        self.publisher: Publisher | None = None

    async def start(self) -> None:
        channel = await self.connection.channel()
        await declare_topology(channel)
        await channel.close()
        self.publisher = await Publisher.open(self.connection)
        handler, on_usage_error = self.build(self.publisher)
        self.consumer = Consumer(
            self.connection,
            self.queue,
            self.adapter,
            handler,
            on_usage_error=on_usage_error,
            prefetch=self.prefetch,
        )
        await self.consumer.start()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.publisher is not None:
            await self.publisher.close()
        for close in self.closing:
            await close()

    @property
    def ready(self) -> bool:
        return all(self.readiness().values())

    def readiness(self) -> dict[str, bool]:
        """Ready when the broker connection is up (not reconnecting) and the consumer is
        registered."""
        return {
            "broker": is_connected(self.connection),
            "consumer": self.consumer is not None and self.consumer.running,
        }


async def serve_worker(
    broker_url: str,
    make: Callable[[AbstractRobustConnection], QueueWorker[M]],
    *,
    health_host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
    health_port: int = 0,
) -> None:
    """Connect (waiting for the broker if it is down), run the worker until SIGTERM/SIGINT,
    stop it cleanly, disconnect.

    With ``health_port`` set, ``/healthz``, ``/readyz`` and ``/metrics`` are served there.
    """
    await serve_connected(broker_url, make, health_host=health_host, health_port=health_port)

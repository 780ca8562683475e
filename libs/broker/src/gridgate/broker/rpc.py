"""Request-reply over RabbitMQ for questions that need an answer now (peeks at a job's output).

aio-pika's JSON RPC pattern: one queue per method, replies on the caller's exclusive queue.
Calls are not persistent and expire: a question nobody answers in time fails fast, and
nothing is left behind to be answered later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.patterns import JsonRPC

from gridgate.broker.stopping import stop_step
from gridgate.core.errors import TransientError


class _RpcEnd:
    """One end of RPC: its channel and aio-pika's pattern on it."""

    def __init__(
        self, connection: AbstractRobustConnection, channel: AbstractChannel, rpc: JsonRPC
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.rpc = rpc

    async def close(self) -> None:
        # Bounded, and skipped while the connection is down: during an outage the robust
        # channel would wait for the broker for ever.
        for failed, step in (
            ("RPC not closed", self.rpc.close()),
            ("RPC channel not closed", self.channel.close()),
        ):
            await stop_step(failed, step, connection=self.connection)


class RpcClient(_RpcEnd):
    """Calls methods some other service serves; one channel, opened once."""

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> RpcClient:
        channel = await connection.channel()
        rpc = await JsonRPC.create(channel)
        return cls(connection, channel, rpc)  # type: ignore[arg-type]

    async def call(self, method: str, timeout_s: float = 20.0, **kwargs: Any) -> Any:
        """The method's answer; TransientError when nobody answers in time or it failed."""
        try:
            return await asyncio.wait_for(
                self.rpc.call(
                    method,
                    kwargs,
                    expiration=max(1, int(timeout_s)),
                    delivery_mode=DeliveryMode.NOT_PERSISTENT,
                ),
                timeout_s,
            )
        except TimeoutError as exc:
            raise TransientError(f"no answer to {method} within {timeout_s} s") from exc
        except Exception as exc:  # the server's exception, relayed, or a returned message
            raise TransientError(f"{method} failed: {exc}") from exc


class RpcServer(_RpcEnd):
    """Serves methods on a channel of its own."""

    @classmethod
    async def open(
        cls, connection: AbstractRobustConnection, methods: dict[str, Callable[..., Awaitable[Any]]]
    ) -> RpcServer:
        channel = await connection.channel()
        rpc = await JsonRPC.create(channel)
        for name, function in methods.items():
            # Not durable, deleted with the last server: calls only make sense while one runs.
            await rpc.register(name, function, auto_delete=True)
        return cls(connection, channel, rpc)  # type: ignore[arg-type]

"""The consumer runner: decode, handle, then ack — or retry, report, or dead-letter.

The message is acknowledged only after the handler returned, i.e. after its work was committed.
What happens on failure depends on the error class the handler raised:

- :class:`~gridgate.core.errors.TransientError`: parked in the retry queue with exponential
  back-off, up to ``max_attempts``; then dead-lettered.
- :class:`~gridgate.core.errors.UsageError`: ``on_usage_error`` tells the user (the job fails
  with the message), then the message is acknowledged: retrying cannot help.
- anything else (:class:`~gridgate.core.errors.FatalError`, a bug, an undecodable body):
  rejected without requeue, so the queue's dead-letter exchange keeps it for an operator.

Two classes come before those:

- a broker or connection failure (:mod:`gridgate.broker.errors`), wherever it happened
  (publishing the handler's report, confirming, retrying): the message comes back, after a
  short pause, by a requeue; never dead-lettered, and not counted as an attempt, since the
  work did not fail. When the consumer's channel itself is gone no requeue can be sent, nor
  is one needed: RabbitMQ requeues the unacknowledged messages of a closed channel. Handlers
  are idempotent, so the redelivery finds what the first delivery did and does not redo it.
- a network failure of another peer (a connection refused or reset, a timeout): transient,
  retried with back-off like a :class:`~gridgate.core.errors.TransientError`.

Acknowledging on a channel that closed meanwhile raises nothing out of the consumer either.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import TypeAdapter, ValidationError

from gridgate.broker.errors import BROKER_ERRORS, is_network_error
from gridgate.broker.publisher import Publisher
from gridgate.broker.stopping import stop_step
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import TransientError, UsageError
from gridgate.observability import observe_message_outcome, observe_queue_lag

log = structlog.get_logger(__name__)

M = TypeVar("M")
ATTEMPT_HEADER = "x-gridgate-attempt"
STOP_GRACE_S = 45.0
"""How long a stopping consumer waits for its in-flight handlers (the chart gives 60 s)."""


class HandlerOutcome(enum.StrEnum):
    """What became of one delivery; exposed for metrics and tests."""

    DONE = "done"
    RETRIED = "retried"
    USAGE_ERROR = "usage-error"
    DEAD_LETTERED = "dead-lettered"
    REQUEUED = "requeued"
    """The broker failed (not the work): the message comes back for another delivery."""


class Consumer(Generic[M]):
    """Consume one work queue with a typed handler.

    Every delivery counts in ``gridgate_messages_total{queue, outcome}``, and the lag of first
    deliveries (from the message's ``sent_at``) in ``gridgate_message_lag_seconds{queue}``.

    Parameters
    ----------
    queue
        Name of the durable work queue.
    adapter
        Decodes the body into the message model (a discriminated union).
    handler
        Does the work and commits; returning means the message may be acknowledged.
    on_usage_error
        Called with the message and the error's text when the handler raised UsageError.
    requeue_delay_s
        Pause before requeueing after a broker failure: the message comes straight back,
        and the broker may still be away.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue: str,
        adapter: TypeAdapter[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        on_usage_error: Callable[[M, str], Awaitable[None]] | None = None,
        prefetch: int = 16,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        observer: Callable[[HandlerOutcome], None] | None = None,
        requeue_delay_s: float = 1.0,
    ) -> None:
        self._connection = connection
        self._queue_name = queue
        self._adapter = adapter
        self._handler = handler
        self._on_usage_error = on_usage_error
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._observer = observer
        self._requeue_delay_s = requeue_delay_s
        self._channel: AbstractChannel | None = None
        self._publisher: Publisher | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start consuming; returns at once."""
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._publisher = await Publisher.open(self._connection)
        queue = await self._channel.get_queue(self._queue_name, ensure=True)
        self._consumer_tag = await queue.consume(self._dispatch)

    @property
    def running(self) -> bool:
        """Whether the consumer is registered on an open channel (for readiness)."""
        return (
            self._consumer_tag is not None
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones finish, then close the channels."""
        if self._channel is None:
            return
        if self._consumer_tag is not None:
            await self._stop_step("consumer not cancelled", self._cancel(self._consumer_tag))
            self._consumer_tag = None
        if self._in_flight:
            # Bounded below the pods' 60 s grace period: what has not finished by then is
            # cancelled unacknowledged, so the broker hands it to another worker; handlers are
            # idempotent, so work done in part is never done twice.
            _, late = await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                log.warning("in-flight messages left to another worker", count=len(late))
                await asyncio.gather(*late, return_exceptions=True)
        if self._publisher is not None:
            await self._publisher.close()
        await self._stop_step("channel not closed", self._channel.close())
        self._channel = None

    async def _stop_step(self, failed: str, step: Awaitable[Any]) -> None:
        await stop_step(failed, step, connection=self._connection, queue=self._queue_name)

    async def _cancel(self, consumer_tag: str) -> None:
        assert self._channel is not None
        queue = await self._channel.get_queue(self._queue_name, ensure=False)
        await queue.cancel(consumer_tag)

    async def _dispatch(self, message: AbstractIncomingMessage) -> None:
        # Run each delivery in its own task so stop() can wait for exactly the in-flight ones.
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            outcome = await self._process(message)
        except asyncio.CancelledError:
            # aiormq cancels the deliveries of a channel that closes (a broker outage): the
            # broker requeues them, and the redelivery meets an idempotent handler.
            log.warning(
                "channel lost while the message was handled; the broker redelivers it",
                queue=self._queue_name,
                message_id=message.message_id,
            )
            observe_message_outcome(self._queue_name, HandlerOutcome.REQUEUED.value)
            if self._observer is not None:
                self._observer(HandlerOutcome.REQUEUED)
            raise
        finally:
            if task is not None:
                self._in_flight.discard(task)
        observe_message_outcome(self._queue_name, outcome.value)
        if self._observer is not None:
            self._observer(outcome)

    async def _process(self, message: AbstractIncomingMessage) -> HandlerOutcome:
        logger = log.bind(
            queue=self._queue_name,
            message_id=message.message_id,
            job_id=(message.headers or {}).get("job_id"),
        )
        try:
            decoded = self._adapter.validate_json(message.body)
        except ValidationError as exc:
            logger.error("undecodable message dead-lettered", errors=exc.error_count())
            return await self._dead_letter(message, logger)
        sent_at = getattr(decoded, "sent_at", None)
        if isinstance(sent_at, datetime) and ATTEMPT_HEADER not in (message.headers or {}):
            observe_queue_lag(self._queue_name, sent_at)
        try:
            await self._handler(decoded)
        except BROKER_ERRORS as exc:
            return await self._requeue(message, logger, exc)
        except TransientError as exc:
            return await self._retry_or_dead_letter(message, logger, str(exc))
        except UsageError as exc:
            if self._on_usage_error is not None:
                try:
                    await self._on_usage_error(decoded, str(exc))
                except BROKER_ERRORS as report_exc:
                    return await self._requeue(message, logger, report_exc)
                except Exception as report_exc:
                    return await self._retry_or_dead_letter(message, logger, repr(report_exc))
            logger.info("usage error reported to the user", reason=str(exc))
            if not await self._settle(message.ack(), logger):
                return HandlerOutcome.REQUEUED
            return HandlerOutcome.USAGE_ERROR
        except Exception as exc:
            if is_network_error(exc):
                return await self._retry_or_dead_letter(message, logger, repr(exc))
            logger.exception("handler failed; message dead-lettered")
            return await self._dead_letter(message, logger)
        # The work is committed, the acknowledgement not sent: a crash here redelivers.
        crash_point("consumer-before-ack")
        if not await self._settle(message.ack(), logger):
            return HandlerOutcome.REQUEUED
        return HandlerOutcome.DONE

    async def _settle(self, action: Coroutine[Any, Any, None], logger: Any) -> bool:
        """Send an ack, nack or reject; ``False`` when the channel is gone.

        The broker requeues the unacknowledged messages of a closed channel by itself, so
        nothing is lost: the message is delivered again, to a handler that is idempotent.
        """
        try:
            await action
        except BROKER_ERRORS as exc:
            logger.warning(
                "channel closed before the message was settled; the broker redelivers it",
                error=repr(exc),
            )
            return False
        return True

    async def _requeue(
        self, message: AbstractIncomingMessage, logger: Any, exc: BaseException
    ) -> HandlerOutcome:
        logger.warning("broker unavailable; message requeued for another delivery", error=repr(exc))
        await asyncio.sleep(self._requeue_delay_s)
        await self._settle(message.nack(requeue=True), logger)
        return HandlerOutcome.REQUEUED

    async def _dead_letter(self, message: AbstractIncomingMessage, logger: Any) -> HandlerOutcome:
        if not await self._settle(message.reject(requeue=False), logger):
            # Not dead-lettered after all: it comes back, and fails again or not.
            return HandlerOutcome.REQUEUED
        return HandlerOutcome.DEAD_LETTERED

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, logger: Any, reason: str
    ) -> HandlerOutcome:
        previous = (message.headers or {}).get(ATTEMPT_HEADER, 0)
        attempt = (previous if isinstance(previous, int) else 0) + 1
        if attempt >= self._max_attempts:
            logger.error(
                "transient failure persisted; dead-lettered", attempts=attempt, reason=reason
            )
            return await self._dead_letter(message, logger)
        delay = min(self._max_delay_s, self._base_delay_s * 2 ** (attempt - 1))
        assert self._publisher is not None
        try:
            await self._publisher.retry_later(
                self._queue_name,
                message.body,
                message_id=message.message_id or "",
                kind=message.type or "",
                job_id=str((message.headers or {}).get("job_id", "")),
                attempt=attempt,
                delay_s=delay,
            )
        except Exception as exc:
            # No copy in the retry queue: the original comes back instead, uncounted.
            return await self._requeue(message, logger, exc)
        logger.warning(
            "transient failure; retrying later", attempt=attempt, delay_s=delay, reason=reason
        )
        # Ack only after the copy in the retry queue is confirmed: nothing is lost between.
        # Should the ack be lost with the channel, the original comes back as well as the
        # copy: a duplicate, which idempotent handlers absorb.
        await self._settle(message.ack(), logger)
        return HandlerOutcome.RETRIED

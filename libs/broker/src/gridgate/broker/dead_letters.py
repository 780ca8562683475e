"""Dead letters: watching ``<queue>.dead``, parking what was seen, re-driving it.

A message is dead-lettered when retrying cannot help (a bug, a fatal error, transient errors
past the last attempt). Left in ``<queue>.dead`` it would be a job in limbo: nobody tells the
job's owner, and nothing brings it back. The :class:`DeadLetterWatcher` hands each dead
letter to a callback (the gateway fails its job), counts it, logs it as an error, and moves
it to ``<queue>.parked``, where it stays until an operator re-drives it (:func:`redrive`) or
purges the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from gridgate.broker.consumer import ATTEMPT_HEADER
from gridgate.broker.errors import BROKER_ERRORS
from gridgate.broker.publisher import Publisher
from gridgate.broker.stopping import stop_step
from gridgate.broker.topology import dead_letter_queue_name, parked_queue_name
from gridgate.observability import observe_dead_letter

log = structlog.get_logger(__name__)

DEAD_QUEUE_HEADER: Final = "x-gridgate-dead-queue"
DEAD_REASON_HEADER: Final = "x-gridgate-dead-reason"
DEAD_AT_HEADER: Final = "x-gridgate-dead-at"
_BROKER_DEATH_HEADERS: Final = frozenset(
    {
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
    }
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def message_type(kind: str) -> str:
    """``collect-results`` -> ``CollectResults``: the name the contracts give the message."""
    return "".join(part.capitalize() for part in kind.split("-")) or "an unnamed message"


@dataclass(frozen=True)
class DeadLetter:
    """What an operator and the job's owner need to know about one dead letter.

    Attributes
    ----------
    queue
        The work queue the message died in.
    kind
        The message's ``kind`` (its AMQP type), e.g. ``collect-results``.
    job_id
        The job it was about, from the ``job_id`` header; ``None`` if it carried none.
    message_id
        The message's id.
    reason
        RabbitMQ's reason: ``rejected`` (by a consumer), ``expired``, ``maxlen``...
    attempts
        How many times it was handled before it was given up.
    """

    queue: str
    kind: str
    job_id: str | None
    message_id: str | None
    reason: str
    attempts: int

    @property
    def type_name(self) -> str:
        return message_type(self.kind)

    @classmethod
    def read(cls, message: AbstractIncomingMessage, queue: str) -> DeadLetter:
        headers = dict(message.headers or {})
        deaths = headers.get("x-death")
        # RabbitMQ puts the latest death first; the x-first-death-* headers are the fallback.
        death = deaths[0] if isinstance(deaths, list) and deaths else {}
        reason = (
            _text(death.get("reason") if isinstance(death, dict) else None)
            or _text(headers.get("x-first-death-reason"))
            or _text(headers.get(DEAD_REASON_HEADER))
            or "unknown"
        )
        previous = headers.get(ATTEMPT_HEADER, 0)
        return cls(
            queue=queue,
            kind=message.type or "",
            job_id=_text(headers.get("job_id")) or None,
            message_id=message.message_id,
            reason=reason,
            # The attempt header counts the retries before this delivery, the last one.
            attempts=(previous if isinstance(previous, int) else 0) + 1,
        )


def _kept_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    return {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in _BROKER_DEATH_HEADERS
    }


class DeadLetterWatcher:
    """Consumes the ``.dead`` queues of some work queues.

    Each dead letter goes to ``on_dead_letter`` first, then is copied, confirmed, to
    ``<queue>.parked``, then acknowledged: a crash in between handles it again, so
    ``on_dead_letter`` must be idempotent (failing a job already failed does nothing).

    Parameters
    ----------
    queues
        The work queues whose dead letters to watch.
    on_dead_letter
        Called with each dead letter; if it raises, the dead letter is requeued after
        ``retry_delay_s`` (the database may be away) and nothing is parked.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queues: Sequence[str],
        on_dead_letter: Callable[[DeadLetter], Awaitable[None]],
        *,
        prefetch: int = 8,
        retry_delay_s: float = 5.0,
    ) -> None:
        self._connection = connection
        self._queues = list(queues)
        self._on_dead_letter = on_dead_letter
        self._prefetch = prefetch
        self._retry_delay_s = retry_delay_s
        self._channel: AbstractChannel | None = None
        self._publisher: Publisher | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start consuming; returns at once."""
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._publisher = await Publisher.open(self._connection)
        for name in self._queues:
            queue = await self._channel.get_queue(dead_letter_queue_name(name), ensure=True)
            tag = await queue.consume(partial(self._dispatch, name))
            self._consumers.append((queue, tag))

    async def stop(self) -> None:
        """Stop taking dead letters, let those in hand finish, close."""
        for queue, tag in self._consumers:
            await stop_step(
                "dead-letter consumer not cancelled",
                queue.cancel(tag),
                connection=self._connection,
                queue=queue.name,
            )
        self._consumers.clear()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        if self._channel is not None:
            await stop_step(
                "dead-letter channel not closed", self._channel.close(), connection=self._connection
            )
            self._channel = None

    async def _dispatch(self, queue: str, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._handle(queue, message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, queue: str, message: AbstractIncomingMessage) -> None:
        letter = DeadLetter.read(message, queue)
        logger = log.bind(
            job_id=letter.job_id,
            queue=queue,
            message_type=letter.type_name,
            message_id=letter.message_id,
            reason=letter.reason,
            attempts=letter.attempts,
        )
        try:
            await self._on_dead_letter(letter)
            await self._park(message, letter)
        except Exception:
            logger.exception("dead letter not handled; it comes back later")
            await asyncio.sleep(self._retry_delay_s)
            with contextlib.suppress(*BROKER_ERRORS):
                await message.nack(requeue=True)
            return
        observe_dead_letter(queue)
        logger.error("message dead-lettered: its job failed, the message is parked")
        with contextlib.suppress(*BROKER_ERRORS):
            # A lost ack brings the dead letter back: failed again (a no-op), parked twice.
            await message.ack()

    async def _park(self, message: AbstractIncomingMessage, letter: DeadLetter) -> None:
        assert self._publisher is not None
        await self._publisher.send_raw(
            parked_queue_name(letter.queue),
            message.body,
            message_id=message.message_id or "",
            kind=message.type or "",
            job_id=letter.job_id or "",
            headers={
                **_kept_headers(message),
                DEAD_QUEUE_HEADER: letter.queue,
                DEAD_REASON_HEADER: letter.reason,
                DEAD_AT_HEADER: datetime.now(UTC).isoformat(timespec="seconds"),
            },
            exchange="",  # the default exchange: straight to the parked queue by its name
        )


@dataclass(frozen=True)
class ParkedMessage:
    """One parked message, as ``dead-letters list`` shows it."""

    queue: str
    kind: str
    job_id: str | None
    message_id: str | None
    reason: str
    attempts: int
    dead_at: str | None


async def list_parked(
    connection: AbstractRobustConnection, queues: Sequence[str], *, limit: int = 100
) -> dict[str, tuple[int, list[ParkedMessage]]]:
    """The parked messages of each work queue: their number and the first ``limit``.

    Messages are only looked at: taken unacknowledged, then given back by closing the
    channel, so they stay parked, in their order.
    """
    listing: dict[str, tuple[int, list[ParkedMessage]]] = {}
    for name in queues:
        channel = await connection.channel()
        try:
            queue = await channel.get_queue(parked_queue_name(name), ensure=True)
            declared = queue.declaration_result
            count = int(declared.message_count or 0) if declared is not None else 0
            shown: list[ParkedMessage] = []
            while len(shown) < limit and (message := await queue.get(fail=False)) is not None:
                headers = message.headers or {}
                letter = DeadLetter.read(message, name)
                shown.append(
                    ParkedMessage(
                        queue=name,
                        kind=letter.kind,
                        job_id=letter.job_id,
                        message_id=letter.message_id,
                        reason=letter.reason,
                        attempts=letter.attempts,
                        dead_at=_text(headers.get(DEAD_AT_HEADER)),
                    )
                )
            listing[name] = (count, shown)
        finally:
            await channel.close()
    return listing


async def redrive(
    connection: AbstractRobustConnection, queue: str, *, job_id: str | None = None
) -> int:
    """Put parked messages of ``queue`` back on it; returns how many.

    Each goes back with its attempt count reset, and leaves the parked queue only once the
    broker confirmed the copy on the work queue. With ``job_id``, only that job's messages.
    """
    publisher = await Publisher.open(connection)
    channel = await connection.channel()
    moved = 0
    try:
        parked = await channel.get_queue(parked_queue_name(queue), ensure=True)
        declared = parked.declaration_result
        # Only the messages parked now: one re-driven that fails again is parked again at
        # the tail, and must wait for the next redrive instead of going round in this one.
        # Not matching ones are held unacknowledged, so get() moves past them; closing the
        # channel gives them back to the parked queue.
        for _ in range(int(declared.message_count or 0) if declared is not None else 0):
            if (message := await parked.get(fail=False)) is None:
                break
            headers = _kept_headers(message)
            if job_id is not None and _text(headers.get("job_id")) != job_id:
                continue
            for private in (ATTEMPT_HEADER, DEAD_QUEUE_HEADER, DEAD_REASON_HEADER, DEAD_AT_HEADER):
                headers.pop(private, None)
            await publisher.send_raw(
                queue,
                message.body,
                message_id=message.message_id or "",
                kind=message.type or "",
                job_id=_text(headers.pop("job_id", "")) or "",
                headers=headers,
            )
            await message.ack()
            moved += 1
            log.info(
                "parked message re-driven",
                queue=queue,
                job_id=_text(message.headers.get("job_id") if message.headers else None),
                message_type=message_type(message.type or ""),
                message_id=message.message_id,
            )
    finally:
        await channel.close()
        await publisher.close()
    return moved


__all__ = [
    "DeadLetter",
    "DeadLetterWatcher",
    "ParkedMessage",
    "list_parked",
    "message_type",
    "redrive",
]

"""Live event streams (GET /api/events, GET /api/jobs/{id}/events): one journal reader per
gateway process fans events out in memory to the open streams of their owners.

The journal (:mod:`gridgate.gateway.storage.journal`) is the source of every streamed event;
the events exchange only wakes the reader up (each replica's own auto-deleted queue), so that
order, resume positions and owners come from the database whatever order the outbox relays
of several replicas published in, and a duplicate publication changes nothing.

A stream that joins takes the reader's position, reads the journal from the client's resume
position on its own, then takes what the reader handed it, skipping what it already sent:
nothing in between is lost, as the reader hands out every row after the position it had
when the stream joined, and the stream's own reads see every row up to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.core.errors import InvalidRequestError
from gridgate.gateway.exceptions import EventsExpiredError, TooManyStreamsError
from gridgate.gateway.storage.journal import START, EventJournalStore, JournalEvent, Position

log = structlog.get_logger(__name__)

CHASE_S = 0.05
"""While a published event has not been read yet, the journal is read again this often: on
PostgreSQL its row becomes readable only once every older transaction has ended."""
CHASE_FOR_S = 30.0
"""A published event not read after this long is given up on (another database's, say)."""
REMEMBERED = 4096
"""Event ids read lately, so that a publication repeated by the relay wakes nothing."""
PAGE = 500


@dataclass(frozen=True)
class StreamPolicy:
    """Operator choices for live streams (docs/events.md)."""

    heartbeat_s: float = 15.0
    """A comment line this often keeps proxies from closing an idle stream."""
    buffer: int = 256
    """Events one stream may have waiting; more and the stream ends (the client resumes)."""
    poll_s: float = 2.0
    """While streams are open, the journal is read at least this often (a lost wake-up)."""
    max_per_user: int = 20
    """Streams one user may have open on one gateway process."""


class Subscription:
    """What the reader hands one stream: a bounded queue, closed on overflow or shutdown."""

    def __init__(self, owner: str, job_id: str | None, capacity: int) -> None:
        self.owner = owner
        self.job_id = job_id
        self.capacity = capacity
        self.joined_at = START
        """The reader's position when this joined; it hands out every row after it."""
        self.through = START
        """Every row of this stream at or before this position is in the queue or was taken."""
        self.closed: str | None = None
        """Why the stream must end: ``"overflow"`` or ``"shutdown"``."""
        self._items: deque[JournalEvent] = deque()
        self._ready = asyncio.Event()

    def wants(self, event: JournalEvent) -> bool:
        return event.owner == self.owner and (self.job_id is None or event.job_id == self.job_id)

    def offer(self, event: JournalEvent) -> None:
        if self.closed:
            return
        if len(self._items) >= self.capacity:
            # A client this far behind reads from the journal again when it reconnects.
            self.close("overflow")
            return
        self._items.append(event)
        self._ready.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self._ready.set()

    async def next(self, timeout_s: float) -> JournalEvent | None:
        """The next event, or ``None`` after ``timeout_s`` or once closed (see :attr:`closed`)."""
        if not self._items and not self.closed:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout_s)
        if self.closed:
            return None
        return self._items.popleft() if self._items else None

    @property
    def overflowed(self) -> bool:
        return self.closed == "overflow"

    @property
    def idle(self) -> bool:
        return not self._items


class EventHub:
    """The process's journal reader and the open streams it feeds."""

    def __init__(self, engine: AsyncEngine, policy: StreamPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self.position = START
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._count = 0
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Published but not read yet (event id -> when it was heard of), and read lately.
        self._unread: dict[str, float] = {}
        self._read_ids: deque[str] = deque(maxlen=REMEMBERED)
        self._read_set: set[str] = set()

    @property
    def streams(self) -> int:
        """How many streams are open."""
        return self._count

    def check_room(self, owner: str) -> None:
        """429 problem when ``owner`` already has the most streams allowed open here."""
        if len(self._subscriptions.get(owner, ())) >= self.policy.max_per_user:
            raise TooManyStreamsError(
                "You already have the most event streams allowed open at once; close one, or "
                "use GET /api/events for all your jobs in one stream.",
                headers={"Retry-After": "5"},
            )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")

    def wake(self, event_id: str | None = None) -> None:
        """An event was published (by any replica): read the journal soon, and again until
        that event was read."""
        if event_id is not None and self._count:
            if event_id in self._read_set:
                return  # published again (at-least-once relay): nothing new
            if len(self._unread) >= REMEMBERED:
                self._unread.pop(next(iter(self._unread)))
            self._unread.setdefault(event_id, time.monotonic())
        self._wakeup.set()

    def shutdown(self) -> None:
        """End every stream now and every later one at once: the process is stopping and the
        HTTP server would otherwise wait for open streams."""
        self._closing = True
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.close("shutdown")

    async def stop(self) -> None:
        self.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @asynccontextmanager
    async def subscribe(self, owner: str, job_id: str | None) -> AsyncIterator[Subscription]:
        subscription = Subscription(owner, job_id, self.policy.buffer)
        if self._closing:
            subscription.close("shutdown")
            yield subscription
            return
        async with self._lock:
            if self._count == 0:
                # The reader idles without streams; it starts again from the journal's end.
                self.position = await self._tail()
            subscription.joined_at = subscription.through = self.position
            self._subscriptions.setdefault(owner, set()).add(subscription)
            self._count += 1
        try:
            yield subscription
        finally:
            mine = self._subscriptions.get(owner)
            if mine is not None and subscription in mine:
                mine.discard(subscription)
                self._count -= 1
                if not mine:
                    del self._subscriptions[owner]

    async def read_after(
        self, position: Position, *, owner: str | None = None, job_id: str | None = None
    ) -> list[JournalEvent]:
        """One page of journal rows after ``position`` (its own short transaction)."""
        async with self.engine.connect() as connection:
            try:
                return await EventJournalStore(connection).read_after(
                    position, limit=PAGE, owner=owner, job_id=job_id
                )
            finally:
                await connection.rollback()

    async def _tail(self) -> Position:
        async with self.engine.connect() as connection:
            try:
                return await EventJournalStore(connection).tail()
            finally:
                await connection.rollback()

    async def _run(self) -> None:
        while True:
            timeout = CHASE_S if self._chasing() else self.policy.poll_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            self._wakeup.clear()
            if self._count == 0:
                self._unread.clear()
                continue
            try:
                await self.read_once()
            except Exception:
                log.exception("event journal read failed")

    def _chasing(self) -> bool:
        """Whether a published event is still unread (its row not readable yet)."""
        horizon = time.monotonic() - CHASE_FOR_S
        while self._unread:
            event_id, heard = next(iter(self._unread.items()))
            if heard > horizon:
                return True
            del self._unread[event_id]
        return False

    def _remember(self, event_id: str) -> None:
        self._unread.pop(event_id, None)
        if len(self._read_ids) == self._read_ids.maxlen:
            self._read_set.discard(self._read_ids[0])
        self._read_ids.append(event_id)
        self._read_set.add(event_id)

    async def read_once(self) -> int:
        """Hand every new readable row to its streams; return how many rows were read."""
        total = 0
        async with self._lock:
            while True:
                rows = await self.read_after(self.position)
                for row in rows:
                    for subscription in self._subscriptions.get(row.owner, ()):
                        if subscription.wants(row):
                            subscription.offer(row)
                    self.position = row.position
                    self._remember(row.event_id)
                total += len(rows)
                if len(rows) < PAGE:
                    break
            for subscriptions in self._subscriptions.values():
                for subscription in subscriptions:
                    subscription.through = self.position
        return total


@dataclass(frozen=True)
class StreamRequest:
    """A stream asked for and allowed: whose, which job (or all), from where."""

    owner: str
    job_id: str | None
    after: Position | None
    """Resume after this position; ``None``: from the job's first event (a job stream) or
    from now (all events)."""
    expires_at: float | None = None
    """When the caller's token expires (epoch seconds): the stream ends then."""

    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at


def resume_position(last_event_id: str | None) -> Position | None:
    """The position of a ``Last-Event-ID``; 422 problem if it is not one of ours."""
    if last_event_id is None or not last_event_id.strip():
        return None
    position = Position.parse(last_event_id)
    if position is None:
        raise InvalidRequestError(
            "Last-Event-ID is not an event id of this stream.",
            errors=[{"field": "Last-Event-ID", "message": "not an id this API sent"}],
        )
    return position


async def check_resumable(journal: EventJournalStore, after: Position | None) -> None:
    """410 problem when events after ``after`` may have been pruned from the journal."""
    if after is None:
        return
    gone = await journal.pruned_through()
    if gone is not None and after < gone:
        raise EventsExpiredError(
            "Events after this id are no longer kept; read the current state and open the "
            "stream again without Last-Event-ID."
        )


@dataclass(frozen=True)
class StreamItem:
    """One thing to send: an event, or (``event`` None) a keep-alive that may move the
    client's resume position to ``position``."""

    event: JournalEvent | None
    position: Position | None = None


class EventStreamer:
    """Produces one stream's items: catch up from the journal, then live from the hub."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def items(self, request: StreamRequest) -> AsyncIterator[StreamItem]:
        hub = self.hub
        async with hub.subscribe(request.owner, request.job_id) as subscription:
            if subscription.closed:
                return
            if request.after is not None:
                last = request.after
            elif request.job_id is not None:
                last = START
            else:
                last = subscription.joined_at
                # The client gets a resume position at once, before any event of its own.
                yield StreamItem(None, last)
            while not subscription.closed:
                try:
                    rows = await hub.read_after(last, owner=request.owner, job_id=request.job_id)
                except Exception:
                    # The client resumes from what it got when it reconnects.
                    log.warning("event stream backlog unreadable; ended", exc_info=True)
                    return
                for row in rows:
                    yield StreamItem(row)
                    last = row.position
                if len(rows) < PAGE:
                    break
            while not subscription.closed and not request.expired():
                event = await subscription.next(hub.policy.heartbeat_s)
                if event is not None:
                    if event.position > last:
                        yield StreamItem(event)
                        last = event.position
                    continue
                if subscription.closed:
                    break
                moved = None
                if subscription.idle and subscription.through > last:
                    moved = last = subscription.through
                yield StreamItem(None, moved)
        if subscription.overflowed:
            log.info("event stream too far behind; ended", owner=request.owner)


__all__ = [
    "EventHub",
    "EventStreamer",
    "StreamItem",
    "StreamPolicy",
    "StreamRequest",
    "Subscription",
    "check_resumable",
    "resume_position",
]

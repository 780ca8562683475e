"""The event journal behind the live streams, on SQLite and PostgreSQL: a reader that follows
it never skips a row committed late by a concurrent transaction, never reads one twice, and
knows when a resume position is older than what is kept; a stream that falls behind ends and
resumes from the journal without a gap."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.gateway.exceptions import EventsExpiredError
from gridgate.gateway.schema import event_journal_table as journal
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.streams import (
    EventHub,
    EventStreamer,
    StreamPolicy,
    StreamRequest,
    check_resumable,
)
from gridgate.gateway.storage.journal import START, EventJournalStore, JournalEvent, Position
from gridgate.testing.services import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    else:
        name, url = await create_postgres_database()
    engine = create_engine(url)
    await upgrade_schema(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await drop_postgres_database(name)


def stage(store: EventJournalStore, owner: str = "alice", at: datetime | None = None) -> str:
    event_id = uuid4().hex
    store.add(
        event_id=event_id,
        event_type="org.gridgate.job.queued.v1",
        owner=owner,
        job_id="j1",
        schedule_id=None,
        body=f'{{"id": "{event_id}"}}',
        created_at=at or datetime.now(UTC),
    )
    return event_id


async def write(engine: AsyncEngine, count: int = 1, **kwargs: object) -> list[str]:
    async with engine.connect() as connection:
        store = EventJournalStore(connection)
        ids = [stage(store, **kwargs) for _ in range(count)]  # type: ignore[arg-type]
        await store.flush()
        await connection.commit()
    return ids


async def read(engine: AsyncEngine, after: Position, **kwargs: object) -> list[JournalEvent]:
    async with engine.connect() as connection:
        rows = await EventJournalStore(connection).read_after(after, limit=1000, **kwargs)  # type: ignore[arg-type]
        await connection.rollback()
        return rows


async def readable(engine: AsyncEngine, count: int) -> list[JournalEvent]:
    """All rows once ``count`` of them are readable: on PostgreSQL a committed row waits for
    every older transaction of the cluster to end, other tests' too."""
    for _ in range(3000):
        rows = await read(engine, START)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} rows readable after 30 s")


async def test_a_row_committed_late_is_not_overtaken_by_a_later_one(engine: AsyncEngine) -> None:
    async with engine.connect() as early:
        store = EventJournalStore(early)
        first = stage(store)
        await store.flush()  # its id (and transaction) is taken first, its commit comes last
        later = asyncio.create_task(write(engine))  # on SQLite this waits for the write lock
        await asyncio.sleep(0.3)
        assert await read(engine, START) == []  # the later row is not readable yet
        await early.commit()
    second = await later
    rows = await readable(engine, 2)
    assert [r.event_id for r in rows] == [first, *second]
    assert rows[0].position < rows[1].position


async def test_a_reader_following_concurrent_writers_misses_nothing_and_repeats_nothing(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(13)
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for _ in range(12):
            async with engine.connect() as connection:
                store = EventJournalStore(connection)
                for _ in range(rng.randint(1, 3)):
                    stage(store, owner=f"user{n % 3}")
                await store.flush()
                # Held open for a while after the insert: others commit in the meantime.
                await asyncio.sleep(rng.uniform(0, 0.03))
                await connection.commit()

    followed: list[JournalEvent] = []
    written = 0

    async def follower() -> None:
        position = START
        while not done.is_set() or len(followed) < written:
            rows = await read(engine, position)
            followed.extend(rows)
            if rows:
                position = rows[-1].position
            await asyncio.sleep(0.002)

    reader = asyncio.create_task(follower())
    await asyncio.gather(*(writer(n) for n in range(6)))
    async with engine.connect() as connection:
        written = int(
            (await connection.execute(select(func.count()).select_from(journal))).scalar_one()
        )
    done.set()
    await asyncio.wait_for(reader, 30)

    everything = await read(engine, START)
    assert len(everything) == written >= 72
    assert [r.event_id for r in followed] == [r.event_id for r in everything]
    mine = await read(engine, START, owner="user1")
    assert [r.event_id for r in mine] == [r.event_id for r in everything if r.owner == "user1"]


async def test_pruning_refuses_exactly_the_resume_ids_whose_followers_are_gone(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:  # nothing pruned yet: any id resumes
        await check_resumable(EventJournalStore(connection), START)
    old = datetime.now(UTC) - timedelta(days=10)
    await write(engine, 3, at=old)
    await write(engine, 2)
    before = await readable(engine, 5)
    async with engine.connect() as connection:
        store = EventJournalStore(connection)
        assert await store.prune(datetime.now(UTC) - timedelta(days=1)) == 3
        await connection.commit()
    kept = await read(engine, START)
    assert [r.event_id for r in kept] == [r.event_id for r in before[3:]]
    async with engine.connect() as connection:
        store = EventJournalStore(connection)
        await check_resumable(store, before[2].position)  # the last pruned: nothing after went
        await check_resumable(store, kept[0].position)
        await check_resumable(store, None)
        for gone in (START, before[0].position, before[1].position):
            with pytest.raises(EventsExpiredError):
                await check_resumable(store, gone)  # what followed it is gone
        assert await store.prune(datetime.now(UTC) - timedelta(days=1)) == 0


async def test_a_stream_that_falls_behind_ends_and_resumes_without_a_gap(
    engine: AsyncEngine,
) -> None:
    hub = EventHub(engine, StreamPolicy(heartbeat_s=0.05, buffer=3))
    streamer = EventStreamer(hub)
    request = StreamRequest(owner="alice", job_id=None, after=None)
    taken: list[JournalEvent] = []
    items = streamer.items(request)
    opening = await anext(items)  # the resume position of a stream opened without one
    assert opening.event is None and opening.position is not None
    assert Position.parse(opening.position.token()) == opening.position  # a valid resume id
    written = await write(engine, 2)
    await write(engine, 2, owner="bob")
    await readable(engine, 4)
    await hub.read_once()
    async for item in items:
        if item.event is not None:
            taken.append(item.event)
        if len(taken) == 2:
            break
    written += await write(engine, 5)  # more than the stream's buffer, while nobody reads
    await readable(engine, 9)
    await hub.read_once()
    rest = [item.event async for item in items if item.event is not None]
    assert rest == []  # the stream ended: its client would reconnect with its last id
    resumed = streamer.items(StreamRequest("alice", None, after=taken[-1].position))
    async for item in resumed:
        if item.event is not None:
            taken.append(item.event)
        if len(taken) == len(written):
            break
    await resumed.aclose()
    assert [e.event_id for e in taken] == written
    assert hub.streams == 0


async def test_shutdown_ends_open_streams_and_refuses_new_ones(engine: AsyncEngine) -> None:
    hub = EventHub(engine, StreamPolicy(heartbeat_s=30))
    streamer = EventStreamer(hub)
    items = streamer.items(StreamRequest("alice", None, None))
    await anext(items)
    reader = asyncio.create_task(anext(items, None))
    await asyncio.sleep(0.1)
    hub.shutdown()
    assert await asyncio.wait_for(reader, 2) is None  # ended, well before the heartbeat
    later = [item async for item in streamer.items(StreamRequest("alice", None, None))]
    assert later == []

"""Live event streams (Server-Sent Events) on the running stack, read with a third-party SSE
client (httpx-sse) unchanged: live order, resume without loss or repeat, only one's own
events, keep-alives, and a clean end when the gateway stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.gateway.main import GRACEFUL_STOP_S
from gridgate.testing.services import free_port, rabbitmq_vhost

FINAL_TYPES = {
    "org.gridgate.job.completed.v1",
    "org.gridgate.job.error.v1",
    "org.gridgate.job.aborted.v1",
}


async def create_job(http: httpx.AsyncClient, **fields: str) -> str:
    created = await http.post("/api/jobs", data={"workflow": "hello-world", **fields})
    assert created.status_code == 303, created.text
    return str(created.headers["location"]).rstrip("/").rsplit("/", 1)[-1]


async def messages(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The stream's messages with data (httpx-sse also yields keep-alives once an id was seen:
    the SSE spec keeps the last id across messages; those have no data)."""
    async with aconnect_sse(http, "GET", url, headers=dict(headers or {})) as source:
        assert source.response.status_code == 200, await source.response.aread()
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for sse in source.aiter_sse():
            if sse.data:
                yield sse


async def until_final(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, limit: int = 0
) -> list[ServerSentEvent]:
    """Messages until the job's final event (or ``limit`` of them)."""
    got: list[ServerSentEvent] = []
    async with asyncio.timeout(120):
        async for sse in messages(http, url, headers):
            got.append(sse)
            if sse.event in FINAL_TYPES or len(got) == limit:
                break
    return got


def order(sse: ServerSentEvent) -> tuple[int, int]:
    data = json.loads(sse.data)["data"]
    return (data["job_version"], data["ordinal"])


async def test_a_job_stream_sees_the_job_live_and_in_order(api) -> None:
    http = api("sse-live")
    job_id = await create_job(http)
    reader = asyncio.create_task(until_final(http, f"/api/jobs/{job_id}/events"))
    await asyncio.sleep(0.5)  # the stream is open before the job runs: what follows is live
    assert (await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "RUN"})).status_code == 303
    got = await reader

    types = [sse.event for sse in got]
    assert types[-4:] == [
        "org.gridgate.job.queued.v1",
        "org.gridgate.job.executing.v1",
        "org.gridgate.job.results_staged.v1",
        "org.gridgate.job.completed.v1",
    ]
    for sse in got:
        event = json.loads(sse.data)
        assert event["specversion"] == "1.0"
        assert event["type"] == sse.event
        assert event["subject"] == f"jobs/{job_id}"
        assert event["data"]["owner"] == "sse-live"
    assert [order(sse) for sse in got] == sorted(order(sse) for sse in got)
    ids = [sse.id for sse in got]
    assert len(set(ids)) == len(ids) and all(ids)


async def test_a_job_stream_resumes_after_a_disconnect_without_loss_or_repeat(api) -> None:
    http = api("sse-resume")
    job_id = await create_job(http, PHASE="RUN")
    url = f"/api/jobs/{job_id}/events"
    first = await until_final(http, url, limit=1)  # disconnect mid-run, after one event
    # Reconnect twice: by header, and by query parameter (clients that cannot set headers).
    rest = await until_final(http, url, headers={"Last-Event-ID": first[-1].id})
    by_query = await until_final(http, f"{url}?lastEventId={first[-1].id}")
    whole = await until_final(http, url)

    assert [sse.data for sse in first + rest] == [sse.data for sse in whole]
    assert [sse.id for sse in first + rest] == [sse.id for sse in whole]
    assert [sse.data for sse in by_query] == [sse.data for sse in rest]
    assert whole[-1].event == "org.gridgate.job.completed.v1"
    # The header wins over the query parameter (a reconnecting EventSource keeps its URL).
    both = await until_final(
        http, f"{url}?lastEventId={first[-1].id}", headers={"Last-Event-ID": rest[-2].id}
    )
    assert [sse.id for sse in both] == [rest[-1].id]


async def test_the_all_events_stream_resumes_and_shows_only_ones_own_events(api) -> None:
    alice, bob = api("sse-alice"), api("sse-bob")
    seen: list[ServerSentEvent] = []
    opened = asyncio.Event()

    async def read(headers: dict[str, str] | None, stop_after: int) -> None:
        async with aconnect_sse(alice, "GET", "/api/events", headers=dict(headers or {})) as source:
            async for sse in source.aiter_sse():
                opened.set()
                if sse.data:
                    seen.append(sse)
                    if len(seen) >= stop_after:
                        return

    first = asyncio.create_task(read(None, 2))
    await asyncio.wait_for(opened.wait(), 30)  # the id-only opening message arrived
    bobs = await create_job(bob, PHASE="RUN")
    alices = await create_job(alice, PHASE="RUN")
    await asyncio.wait_for(first, 120)  # two of alice's events, then a disconnect
    cut = seen[-1].id
    await asyncio.wait_for(read({"Last-Event-ID": cut}, 4), 120)

    assert {json.loads(sse.data)["data"]["owner"] for sse in seen} == {"sse-alice"}
    assert {json.loads(sse.data)["data"]["job_id"] for sse in seen} == {alices}
    assert [sse.event for sse in seen] == [
        "org.gridgate.job.queued.v1",
        "org.gridgate.job.executing.v1",
        "org.gridgate.job.results_staged.v1",
        "org.gridgate.job.completed.v1",
    ]
    # Bob's job is not there, and its own stream is not alice's to read.
    stranger = await alice.get(f"/api/jobs/{bobs}/events")
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"


async def test_a_resume_id_that_is_not_ours_is_a_problem(api) -> None:
    http = api("sse-bad-id")
    answer = await http.get("/api/events", headers={"Last-Event-ID": "nonsense"})
    assert answer.status_code == 422
    assert answer.json()["type"] == "urn:gridgate:problem:invalid-request"
    anonymous = await httpx.AsyncClient(base_url=str(http.base_url)).get("/api/events")
    assert anonymous.status_code == 401


@contextlib.asynccontextmanager
async def own_stack(tmp_path: Path, **gateway_options: Any) -> AsyncIterator[DevStack]:
    with rabbitmq_vhost() as vhost:
        dev = DevStack(
            data_dir=tmp_path, port=free_port(), broker_url=vhost, gateway_options=gateway_options
        )
        await dev.start()
        try:
            yield dev
        finally:
            await dev.stop()


def client_of(dev: DevStack, user: str, lifetime_s: int = 3600) -> httpx.AsyncClient:
    token = dev_issuer(dev.data_dir, dev.host, dev.port).mint(
        user, groups=["cta"], audience=AUDIENCE, lifetime_s=lifetime_s
    )
    return httpx.AsyncClient(
        base_url=dev.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def raw_lines(http: httpx.AsyncClient, url: str, count: int) -> list[str]:
    lines: list[str] = []
    async with http.stream("GET", url) as response:
        async for line in response.aiter_lines():
            lines.append(line)
            if len(lines) >= count:
                break
    return lines


async def test_keep_alive_comments_arrive_and_the_stream_ends_when_the_gateway_stops(
    tmp_path: Path,
) -> None:
    async with (
        own_stack(tmp_path, stream_heartbeat_s=0.2, max_streams_per_user=2) as dev,
        client_of(dev, "sse-k") as http,
    ):
        lines = await asyncio.wait_for(raw_lines(http, "/api/events", 8), 30)
        assert lines.count(": keep-alive") >= 3
        # A user's streams are capped; the cap is per user.
        async with (
            http.stream("GET", "/api/events") as one,
            http.stream("GET", "/api/events") as two,
        ):
            for stream in (one, two):  # both are open once their opening id arrived
                async for line in stream.aiter_lines():
                    if line.startswith("id:"):
                        break
            third = await http.get("/api/events")
            assert third.status_code == 429
            assert third.json()["type"] == "urn:gridgate:problem:too-many-streams"
            async with client_of(dev, "sse-other") as other:
                async with other.stream("GET", "/api/events") as ok:
                    assert ok.status_code == 200
        # A stream ends when its token expires (the client must come back with a new one).
        async with client_of(dev, "sse-short", lifetime_s=2) as short:
            ended = await asyncio.wait_for(raw_lines(short, "/api/events", 10_000), 30)
            assert ended.count(": keep-alive") >= 3
        # The stream ends, cleanly, when the gateway is told to stop: otherwise the server
        # would wait out its graceful period and then cut the response off mid-stream.
        received: list[ServerSentEvent] = []
        first = asyncio.Event()

        async def listen() -> None:
            async with aconnect_sse(http, "GET", "/api/events") as source:
                async for sse in source.aiter_sse():
                    received.append(sse)
                    first.set()

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(first.wait(), 30)
        assert dev.server is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        dev.server.should_exit = True
        await asyncio.wait_for(listener, 10)  # raises if the response was cut off
        assert loop.time() - started < GRACEFUL_STOP_S, "the stream outlived the graceful stop"


async def test_the_all_events_stream_carries_schedule_events_too(api) -> None:
    http = api("sse-scheduler")
    got: list[ServerSentEvent] = []
    opened = asyncio.Event()

    async def read() -> None:
        async with aconnect_sse(http, "GET", "/api/events") as source:
            async for sse in source.aiter_sse():
                opened.set()
                if sse.data:
                    got.append(sse)
                    seen = {sse.event for sse in got}
                    if {"org.gridgate.job.queued.v1", "org.gridgate.schedule.fired.v1"} <= seen:
                        return

    reader = asyncio.create_task(read())
    await asyncio.wait_for(opened.wait(), 30)
    created = await http.post(
        "/api/schedules",
        json={
            "workflow": "hello-world",
            "trigger": {"kind": "interval", "hours": 6},
            "paused": True,
        },
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["scheduleId"]
    fired = await http.post(f"/api/schedules/{schedule_id}/run")
    assert fired.status_code == 201, fired.text
    await asyncio.wait_for(reader, 60)

    firing = [sse for sse in got if sse.event == "org.gridgate.schedule.fired.v1"]
    assert len(firing) == 1
    data = json.loads(firing[0].data)["data"]
    assert data["schedule_id"] == schedule_id and data["owner"] == "sse-scheduler"
    queued = [sse for sse in got if sse.event == "org.gridgate.job.queued.v1"]
    assert json.loads(queued[0].data)["data"]["job_id"] == data["job_id"]

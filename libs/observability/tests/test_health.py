"""The workers' health endpoint over real sockets: liveness, readiness, metrics, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gridgate.observability import HealthServer, observe_message_outcome


@pytest_asyncio.fixture(loop_scope="session")
async def endpoint() -> AsyncIterator[tuple[str, dict[str, bool]]]:
    checks = {"broker": False, "consumer": False}
    server = HealthServer(lambda: checks, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", checks
    finally:
        await server.stop()


async def test_liveness_answers_while_not_ready(endpoint) -> None:
    url, _checks = endpoint
    async with httpx.AsyncClient(base_url=url) as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "alive"}
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "checks": {"broker": "down", "consumer": "down"}}


async def test_readiness_follows_the_checks(endpoint) -> None:
    url, checks = endpoint
    async with httpx.AsyncClient(base_url=url) as http:
        checks.update(broker=True, consumer=True)
        assert (await http.get("/readyz")).json() == {
            "ready": True,
            "checks": {"broker": "ok", "consumer": "ok"},
        }
        checks["consumer"] = False
        assert (await http.get("/readyz?verbose=1")).status_code == 503


async def test_a_failing_check_means_not_ready() -> None:
    def broken() -> dict[str, bool]:
        raise RuntimeError("no")

    server = HealthServer(broken, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            response = await http.get("/readyz")
    finally:
        await server.stop()
    assert response.status_code == 503
    assert response.json()["checks"] == {"readiness-check": "down"}


async def test_metrics_are_in_the_prometheus_text_format(endpoint) -> None:
    url, _checks = endpoint
    observe_message_outcome("health.test.queue", "done")
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/metrics")
        head = await http.head("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert 'gridgate_messages_total{outcome="done",queue="health.test.queue"}' in response.text
    assert "process_resident_memory_bytes" in response.text
    assert head.status_code == 200
    assert head.content == b""


async def test_other_paths_and_methods_are_refused(endpoint) -> None:
    url, _checks = endpoint
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.post("/readyz", content=b"x")).status_code == 405


async def test_garbage_and_silent_clients_do_not_hurt_the_endpoint(endpoint) -> None:
    url, _checks = endpoint
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed without an answer
    writer.close()
    _silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).status_code == 200
    silent.close()

"""The gateway process: readiness through broker and database outages, and SIGTERM.

Each test runs ``gridgate-gateway`` as a process, since signals, uvicorn's shutdown and the
driver's timeouts only show there; outages hit real servers through a per-test vhost and a
TCP proxy, so the shared RabbitMQ and PostgreSQL stay up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.iam import DevIssuer
from gridgate.testing.processes import AUDIENCE, GatewayProcess, gateway_env, serve_dev_issuer
from gridgate.testing.proxy import ProxyMode, TcpProxy
from gridgate.testing.services import (
    broker_outage,
    create_postgres_database,
    drop_postgres_database,
    rabbitmq_vhost,
)

PROBLEM = "application/problem+json"
DATABASE_UNAVAILABLE = "urn:gridgate:problem:database-unavailable"


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[DevIssuer]:
    with serve_dev_issuer(tmp_path / "issuer-key.json") as served:
        yield served


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture
def sqlite_gateway(tmp_path: Path, vhost_url: str, issuer: DevIssuer) -> Iterator[GatewayProcess]:
    # A short reconnect interval: the outage test waits for it.
    env = gateway_env(
        tmp_path,
        vhost_url + "?reconnect_interval=2",
        f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        issuer,
    )
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest_asyncio.fixture
async def proxied_postgres_url() -> AsyncIterator[tuple[str, TcpProxy]]:
    name, url = await create_postgres_database()
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        yield url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"), proxy
    finally:
        await proxy.close()
        await drop_postgres_database(name)


def client(gateway: GatewayProcess, issuer: DevIssuer, timeout: float = 30) -> httpx.AsyncClient:
    token = issuer.mint("lifecycle-user", groups=["cta"], audience=AUDIENCE)
    return httpx.AsyncClient(
        base_url=gateway.url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
    )


async def create_job(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post("/api/jobs", data={"workflow": "hello-world"})


async def readiness_becomes(http: httpx.AsyncClient, status: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await http.get("/readyz")
        if response.status_code == status:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never answered {status}: {response.json()}")


async def test_readiness_is_false_while_the_broker_connection_reconnects(
    sqlite_gateway: GatewayProcess, vhost_url: str
) -> None:
    await asyncio.to_thread(sqlite_gateway.wait_ready)
    async with httpx.AsyncClient(base_url=sqlite_gateway.url, timeout=10) as http:
        with broker_outage(vhost_url):
            down = await readiness_becomes(http, 503, timeout_s=30)
        assert down["checks"]["broker"] == "down"
        assert down["checks"]["database"] == "ok"
        up = await readiness_becomes(http, 200, timeout_s=60)
        assert up["checks"] == {"database": "ok", "broker": "ok", "process": "ok"}


async def test_sigterm_stops_the_gateway_within_ten_seconds_with_a_wait_open(
    sqlite_gateway: GatewayProcess, issuer: DevIssuer
) -> None:
    await asyncio.to_thread(sqlite_gateway.wait_ready)
    async with client(sqlite_gateway, issuer) as http:
        url = (await create_job(http)).headers["location"]
        # No submitter runs: the job stays QUEUED, an active phase WAIT blocks on.
        await http.post(f"{url}/phase", data={"PHASE": "RUN"})
        waiter = asyncio.create_task(http.get(url, params={"WAIT": -1}))
        await asyncio.sleep(0.5)
        assert not waiter.done()
        sqlite_gateway.terminate()
        stopped = time.monotonic()
        await asyncio.to_thread(sqlite_gateway.process.wait, 15)
        assert time.monotonic() - stopped < 10
        assert "Application shutdown complete" in sqlite_gateway.log.read_text()
        await asyncio.gather(waiter, return_exceptions=True)


async def test_sigterm_answers_an_open_wait_with_the_job_at_once(
    sqlite_gateway: GatewayProcess, issuer: DevIssuer
) -> None:
    await asyncio.to_thread(sqlite_gateway.wait_ready)
    async with client(sqlite_gateway, issuer) as http:
        url = (await create_job(http)).headers["location"]
        await http.post(f"{url}/phase", data={"PHASE": "RUN"})
        waiter = asyncio.create_task(http.get(url, params={"WAIT": -1}))
        await asyncio.sleep(0.5)
        sqlite_gateway.terminate()
        stopped = time.monotonic()
        answer = await waiter
        assert time.monotonic() - stopped < 2
        assert answer.status_code == 200
        assert answer.json()["phase"] == "QUEUED"
        await asyncio.to_thread(sqlite_gateway.process.wait, 15)


async def test_database_outage_answers_503_with_retry_after_and_recovers(
    tmp_path: Path,
    broker_url: str,
    issuer: DevIssuer,
    proxied_postgres_url: tuple[str, TcpProxy],
) -> None:
    database_url, proxy = proxied_postgres_url
    gateway = GatewayProcess(
        gateway_env(tmp_path, broker_url, database_url, issuer), tmp_path / "gateway.log"
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        async with client(gateway, issuer) as http:
            assert (await create_job(http)).status_code == 303
            before = (await http.get("/api/jobs")).json()["total"]

            for mode in (ProxyMode.REFUSE, ProxyMode.BLACKHOLE):
                # Let the last request's connection go back to the pool (its clean-up), so
                # the outage hits the next request and not that clean-up.
                await asyncio.sleep(0.5)
                await proxy.set_mode(mode)
                started = time.monotonic()
                refused = await create_job(http)
                # A silent database is bounded by the driver's timeouts, well under a
                # client's 30 s.
                assert time.monotonic() - started < 15, mode
                assert refused.status_code == 503, (mode, refused.text)
                assert refused.headers["content-type"] == PROBLEM
                assert refused.headers["retry-after"] == "5"
                assert refused.json()["type"] == DATABASE_UNAVAILABLE
                down = await readiness_becomes(http, 503, timeout_s=5)
                assert down["checks"]["database"].startswith("failed")

                await proxy.set_mode(ProxyMode.FORWARD)
                await readiness_becomes(http, 200, timeout_s=15)
                # Nothing written during the outage lands afterwards.
                await asyncio.sleep(1)
                assert (await http.get("/api/jobs")).json()["total"] == before, mode

            assert (await create_job(http)).status_code == 303
        log = gateway.log.read_text()
        assert "unhandled error" not in log
        # The operator learns why: the driver's refusal and its timeout, each named.
        assert log.count("database unavailable") >= 2, log[-2000:]
    finally:
        gateway.stop()

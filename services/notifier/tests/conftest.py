"""Fixtures: a stack with a notifier that may call the tests' receiver on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).parent))

from receiver import Receiver

from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.schema.migrate import upgrade_schema
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

NOTIFIER_TEST_OPTIONS = {
    "allow_http": True,
    "allowed_networks": ["127.0.0.1/32"],
    "retry_base_s": 0.2,
    "retry_max_s": 0.4,
    "give_up_after_s": 4.0,
    "timeout_s": 1.0,
    "order_window_s": 0.3,
    "poll_interval_s": 0.2,
    "lease_s": 5.0,
}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def webhook_stack(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[object]:
    """The services with the notifier's tests options, on a vhost and database of their own."""
    from gridgate.cli.stack import DevStack

    data_dir: Path = tmp_path_factory.mktemp(f"webhooks-{database_kind}")
    database_name = database_url = None
    if database_kind == "postgresql":
        database_name, database_url = await create_postgres_database()
    with rabbitmq_vhost() as vhost_url:
        dev = DevStack(
            data_dir=data_dir,
            port=free_port(),
            broker_url=vhost_url,
            database_url=database_url,
            notifier_options=NOTIFIER_TEST_OPTIONS,
        )
        await dev.start()
        try:
            yield dev
        finally:
            await dev.stop()
            if database_name:
                await drop_postgres_database(database_name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def user_api(webhook_stack: object) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    from gridgate.cli.stack import AUDIENCE, dev_issuer

    clients: list[httpx.AsyncClient] = []

    def client(user: str) -> httpx.AsyncClient:
        issuer = dev_issuer(webhook_stack.data_dir, webhook_stack.host, webhook_stack.port)  # type: ignore[attr-defined]
        token = issuer.mint(user, groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
        http = httpx.AsyncClient(
            base_url=webhook_stack.url,  # type: ignore[attr-defined]
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )
        clients.append(http)
        return http

    yield client
    for http in clients:
        await http.aclose()


@pytest.fixture
async def engine(database_kind: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A notifier database at the newest schema, of each kind; no service around it."""
    name = None
    if database_kind == "postgresql":
        name, url = await create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    engine = create_engine(url)
    await upgrade_schema(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await drop_postgres_database(name)

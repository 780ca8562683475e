"""The gridgate pytest plugin: fixtures for the broker, both databases and a running stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.dirac.bridge import DiracBridge
from gridgate.dirac.testbed import DiracTestbed
from gridgate.diracx.testbed import DiracXTestbed
from gridgate.testing.dirac import start_dirac_testbed
from gridgate.testing.diracx import start_diracx_testbed
from gridgate.testing.docker import (
    DockerTestbed,
    ServiceImages,
    base_image,
    build_service_images,
)
from gridgate.testing.docker import docker_testbed as start_docker_testbed
from gridgate.testing.idp import external_idp
from gridgate.testing.rucio import rucio_testbed, storage_testbed
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

# Session fixtures of the data-lake testbeds, registered with this plugin.
__all__ = ["rucio_testbed", "storage_testbed"]

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test session."""
    with rabbitmq_vhost() as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this test session."""
    name, url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(name)


@pytest.fixture(scope="session", params=DATABASES)
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[object]:
    """The five services in one process, on SQLite or PostgreSQL, on a vhost of their own."""
    from gridgate.cli.stack import DevStack  # the CLI package composes every service

    data_dir: Path = tmp_path_factory.mktemp(f"stack-{database_kind}")
    database_name = None
    database_url = None
    if database_kind == "postgresql":
        database_name, database_url = await create_postgres_database()
    with rabbitmq_vhost() as vhost_url:
        dev = DevStack(
            data_dir=data_dir, port=free_port(), broker_url=vhost_url, database_url=database_url
        )
        await dev.start()
        try:
            yield dev
        finally:
            await dev.stop()
            if database_name:
                await drop_postgres_database(database_name)


@pytest.fixture(scope="session")
def idp_issuer() -> Iterator[str]:
    """The OpenID provider testbed (oidc-provider on Node.js), started for the session."""
    yield from external_idp()


@pytest.fixture(scope="session")
def docker_testbed() -> Iterator[DockerTestbed]:
    """A real dockerd and registry (testbeds/docker), started for the session if needed."""
    yield from start_docker_testbed()


@pytest.fixture(scope="session")
def docker_base_image(docker_testbed: DockerTestbed) -> str:
    """The testbed's Python base image in the local registry (built once per machine)."""
    return base_image(docker_testbed)


@pytest.fixture(scope="session")
def service_images(docker_testbed: DockerTestbed) -> ServiceImages:
    """The base image (cached in the local registry) and an image of every service."""
    return build_service_images(docker_testbed)


@pytest.fixture
def token_for(stack: object) -> Callable[..., str]:
    """Mint a development-issuer token for a user and groups."""
    from gridgate.cli.stack import AUDIENCE, dev_issuer

    def mint(user: str, groups: tuple[str, ...] = ("cta",), lifetime_s: int = 3600) -> str:
        issuer = dev_issuer(stack.data_dir, stack.host, stack.port)  # type: ignore[attr-defined]
        return issuer.mint(user, groups=list(groups), audience=AUDIENCE, lifetime_s=lifetime_s)

    return mint


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    stack: object, token_for: Callable[..., str]
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Factory of HTTP clients authenticated as a given user."""
    clients: list[httpx.AsyncClient] = []

    def client(user: str, groups: tuple[str, ...] = ("cta",)) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            base_url=stack.url,  # type: ignore[attr-defined]
            headers={"Authorization": f"Bearer {token_for(user, groups)}"},
            timeout=90.0,
        )
        clients.append(http)
        return http

    yield client
    for http in clients:
        await http.aclose()


@pytest.fixture(scope="session")
def dirac_testbed() -> dict[str, str]:
    """The DIRAC 8 testbed (testbeds/dirac), started once; its client environment."""
    return start_dirac_testbed()


@pytest.fixture(scope="session")
def diracx_testbed() -> DiracXTestbed:
    """The DiracX testbed (testbeds/diracx), started once; how to reach it."""
    return start_diracx_testbed()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dirac_robot(dirac_testbed: dict[str, str]) -> AsyncIterator[DiracBridge]:
    """A DIRAC bridge acting as gridgate's robot (its host certificate, no proxy): the tests'
    own look at what DIRAC holds."""
    testbed = DiracTestbed.from_variables(dirac_testbed)
    bridge = DiracBridge(testbed.connection.environment(), size=1)
    yield bridge
    await bridge.close()

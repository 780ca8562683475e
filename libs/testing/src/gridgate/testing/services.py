"""Real services for tests: a RabbitMQ vhost and a PostgreSQL database of their own.

Each test session gets a fresh vhost and database, so runs never see each other's queues or
rows, and nothing is left behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit

import asyncpg

BROKER_HOST = os.environ.get("GRIDGATE_TEST_BROKER_HOST", "127.0.0.1:5672")
POSTGRES_ADMIN_DSN = os.environ.get(
    "GRIDGATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rabbitmqctl(*args: str) -> None:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise RuntimeError("rabbitmqctl is needed to create test vhosts (install rabbitmq-server)")
    subprocess.run([executable, "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """Yield the AMQP URL of a new vhost; delete it afterwards."""
    name = f"gridgate-test-{secrets.token_hex(4)}"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@{BROKER_HOST}/{quote(name, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", name)


def drop_broker_connections(url: str) -> None:
    """Close every client connection to the vhost of ``url``, as a broker restart does.

    The broker stays up, so robust connections reconnect at their next attempt.
    """
    vhost = unquote(urlsplit(url).path.lstrip("/")) or "/"
    _rabbitmqctl("close_all_connections", "--vhost", vhost, "gridgate test: broker outage")


@contextmanager
def broker_outage(url: str) -> Iterator[None]:
    """Keep the vhost of ``url`` unreachable for the block: its connections are closed and
    reconnecting is refused (the user loses its permissions) until the block ends.

    Unlike :func:`drop_broker_connections` alone, the outage lasts as long as the test needs,
    however fast the clients reconnect and however slowly a loaded machine lets it look.
    """
    vhost = unquote(urlsplit(url).path.lstrip("/")) or "/"
    _rabbitmqctl("clear_permissions", "-p", vhost, "guest")
    try:
        drop_broker_connections(url)
        yield
    finally:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


async def create_postgres_database() -> tuple[str, str]:
    """Create a new database; return its name and SQLAlchemy URL."""
    name = f"gridgate_test_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


async def drop_postgres_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()

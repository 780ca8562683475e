"""Broker leases on the real RabbitMQ: one holder per name, free again on release or when the
holder's connection goes (a SIGKILLed holder, or a robust connection that reconnects)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import aio_pika
import pytest

from gridgate.broker import BrokerLeases, Lease, connect


def _close_connection(name: str) -> None:
    """Have RabbitMQ drop the connection of that client-given name (and no other)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (pid,) = [line.split()[0] for line in listed.splitlines() if f'"{name}"' in line]
    subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], check=True)


async def test_one_holder_per_name_until_release(broker_url: str) -> None:
    first, second = await connect(broker_url), await connect(broker_url)
    try:
        mine, theirs = BrokerLeases(first), BrokerLeases(second)
        lease = await mine.try_take("image-build.x:r-1")
        assert lease is not None
        # Refused to another connection, however often it asks; other names are free.
        for _ in range(3):
            assert await theirs.try_take("image-build.x:r-1") is None
        other = await theirs.try_take("image-build.x:r-2")
        assert other is not None
        await lease.release()
        taken = await theirs.try_take("image-build.x:r-1")
        assert taken is not None
        assert await mine.try_take("image-build.x:r-1") is None
        await taken.release()
        await other.release()
    finally:
        await first.close()
        await second.close()


async def _take_when_free(leases: BrokerLeases, name: str) -> Lease:
    for _ in range(600):
        lease = await leases.try_take(name)
        if lease is not None:
            return lease
        await asyncio.sleep(0.1)
    raise AssertionError(f"the lease {name} stayed taken after its holder's connection went")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_lost_holder_frees_its_lease_and_does_not_take_it_back(broker_url: str) -> None:
    name = f"lease-holder-{id(broker_url)}"
    holder = await aio_pika.connect_robust(
        broker_url, client_properties={"connection_name": name}, reconnect_interval=0.5
    )
    waiter = await connect(broker_url)
    try:
        held = await BrokerLeases(holder).try_take("image-build.y:r-1")
        assert held is not None
        assert await BrokerLeases(waiter).try_take("image-build.y:r-1") is None
        # The holder's connection drops (as when its process dies or its network goes); the
        # robust connection comes back, but the lease is the waiter's now and stays so.
        await asyncio.to_thread(_close_connection, name)
        taken = await _take_when_free(BrokerLeases(waiter), "image-build.y:r-1")
        async with asyncio.timeout(60):
            await holder.connected.wait()
        assert await BrokerLeases(holder).try_take("image-build.y:r-1") is None
        await held.release()  # the old holder's release must not free the new holder's lease
        assert await BrokerLeases(holder).try_take("image-build.y:r-1") is None
        await taken.release()
    finally:
        await holder.close()
        await waiter.close()

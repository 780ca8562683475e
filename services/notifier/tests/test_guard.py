"""The outbound policy on its own, and the guarded client against a real local server."""

from __future__ import annotations

import ipaddress

import pytest
from receiver import Receiver

from gridgate.notifier.guard import OutboundPolicy, UnsafeUrlError, guarded_client

STRICT = OutboundPolicy.build(allow_http=False, cidrs=[])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "64:ff9b::a00:1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeUrlError):
        STRICT.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    STRICT.check_address(ipaddress.ip_address(address))


def test_the_allow_list_admits_an_internal_network_and_nothing_else() -> None:
    policy = OutboundPolicy.build(allow_http=True, cidrs=["10.20.0.0/16"])
    policy.check_address(ipaddress.ip_address("10.20.3.4"))
    with pytest.raises(UnsafeUrlError):
        policy.check_address(ipaddress.ip_address("10.21.3.4"))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/hook",  # plain http without the operator's consent
        "ftp://example.org/",
        "https://user:secret@example.org/",
        "https:///nohost",
        "https://[::1]/",
        "https://127.0.0.1:8443/",
        "https://[::ffff:127.0.0.1]/",
        "not a url",
    ],
)
def test_url_forms_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        STRICT.check_url(url)


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UnsafeUrlError, match="internal"):
        await OutboundPolicy.build(allow_http=True, cidrs=[]).check("http://localhost/hook")


async def test_the_guarded_client_never_connects_to_a_refused_address() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        policy = OutboundPolicy.build(allow_http=True, cidrs=[])
        async with guarded_client(policy, 2.0) as http:
            for url in (receiver.url("guard"), f"http://localhost:{receiver.port}/hook/guard"):
                with pytest.raises(UnsafeUrlError):
                    await http.post(url, content=b"{}")
        assert receiver.calls["guard"] == 0
        # The same server on the operator's allow-list is reached (through the checked address).
        allowed = OutboundPolicy.build(allow_http=True, cidrs=["127.0.0.1/32"])
        async with guarded_client(allowed, 2.0) as http:
            response = await http.post(receiver.url("guard"), content=b"{}")
        assert response.status_code == 200 and receiver.calls["guard"] == 1
    finally:
        await receiver.stop()

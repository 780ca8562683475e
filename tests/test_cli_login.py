"""``gridgate login``: the OIDC device flow against the IdP testbed (oidc-provider), then
the token it keeps used by the other commands, and ``logout``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridgate.cli import exits
from gridgate.testing.idp import approve_device_login, private_idp
from gridgate.testing.services import free_port

pytestmark = pytest.mark.idp


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def device_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This checkout's IdP testbed (device flow on), as an instance of our own."""
    yield from private_idp(tmp_path_factory.mktemp("idp"), free_port())


async def test_login_with_the_device_flow_then_logout(
    device_idp: str, broker_url: str, tmp_path: Path
) -> None:
    from gridgate.cli.stack import DevStack

    stack = DevStack(
        data_dir=tmp_path / "stack",
        port=free_port(),
        broker_url=broker_url,
        oidc_issuer=device_idp,
    )
    await stack.start()
    config = tmp_path / "config"
    env = {**os.environ, "GRIDGATE_URL": stack.url, "GRIDGATE_CONFIG_DIR": str(config)}
    env.pop("GRIDGATE_TOKEN", None)

    async def gridgate(*args: str) -> Done:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridgate.cli",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return Done(process.returncode, out.decode(), err.decode())

    try:
        login = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridgate.cli",
            "login",
            "--issuer",
            device_idp,
            "--resource",
            "urn:gridgate",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert login.stderr is not None
        first = (await asyncio.wait_for(login.stderr.readline(), 30)).decode()
        assert first.startswith("Open "), first
        where = first.split()[1]
        # The user, in a browser: confirm the code, sign in as alice, consent.
        await asyncio.to_thread(approve_device_login, where, "alice")
        _, rest = await asyncio.wait_for(login.communicate(), 60)
        assert login.returncode == 0, rest.decode()
        assert f"Logged in at {stack.url} as alice" in rest.decode()

        stored = config / "credentials.json"
        assert stored.stat().st_mode & 0o777 == 0o600
        assert json.loads(stored.read_text())[stack.url]["issuer"] == device_idp

        me = await gridgate("whoami", "--json")
        assert me.code == 0, me.err
        identity = json.loads(me.out)
        assert identity["sub"] == "alice" and identity["accepted"] is True
        assert identity["issuer"] == device_idp
        # An expired access token is renewed with the refresh token, and kept.
        kept = json.loads(stored.read_text())
        first_token = kept[stack.url]["access_token"]
        assert kept[stack.url]["refresh_token"]
        kept[stack.url]["expires_at"] = 0
        stored.write_text(json.dumps(kept))
        renewed = await gridgate("whoami", "--json")
        assert renewed.code == 0, renewed.err
        assert json.loads(stored.read_text())[stack.url]["access_token"] != first_token
        assert stored.stat().st_mode & 0o777 == 0o600

        submitted = await gridgate("submit", "hello-world", "--wait")
        assert submitted.code == exits.OK, submitted.err

        assert (await gridgate("logout")).code == 0
        assert (await gridgate("jobs")).code == exits.AUTH
    finally:
        await stack.stop()

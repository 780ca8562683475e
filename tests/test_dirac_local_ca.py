"""Proxies of our local CA, as real DIRAC reads and accepts them (auth service, DIRAC bridge)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import pytest

from gridgate.auth.proxies.base import ProxyRequest
from gridgate.auth.proxies.dev_ca import ensure_dev_ca
from gridgate.auth.proxies.local_ca import LocalCAProvider
from gridgate.core.errors import TransientError
from gridgate.dirac.bridge import BridgeCallError, DiracBridge
from gridgate.dirac.jdl import TASKS_FILE, WRAPPER, JobDescription, Slot, build_jdl
from gridgate.testing.dirac import dirac_script

pytestmark = pytest.mark.dirac
USER = "lc-carol"
PAYLOAD = Path(__file__).parents[1] / "libs" / "dirac" / "src" / "gridgate" / "dirac" / "payload"


@pytest.fixture(scope="module")
def provider(
    dirac_testbed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> LocalCAProvider:
    # A CA name of its own: the DIRAC servers cache trusted CAs by subject hash, so a new CA
    # under an old name would be taken for the old one.
    cert, key = ensure_dev_ca(
        tmp_path_factory.mktemp("local-ca"),
        f"/O=gridgate/OU=tests/CN=local CA {secrets.token_hex(4)}",
    )
    dirac_script("trust_ca.sh", str(cert))
    local_ca = LocalCAProvider.from_files(cert, key)
    # Waits until every DIRAC service has dropped its cached registry (about 70 s).
    dirac_script("register_user.sh", USER, local_ca.user_dn(USER, "cta"), "cta_user")
    return local_ca


async def test_dirac_reads_identity_and_group_from_a_local_ca_proxy(
    dirac_robot: DiracBridge, provider: LocalCAProvider
) -> None:
    proxy = await provider.issue(ProxyRequest(USER, "cta", "cta_user", 7200))
    info = await dirac_robot.call("chain_info", {"pem": proxy.pem.decode()})
    assert info["isProxy"] is True
    assert info["isLimitedProxy"] is False
    assert info["identity"] == "/O=gridgate/OU=cta/CN=lc-carol"
    assert info["group"] == "cta_user"
    assert 7100 < info["secondsLeft"] <= 7200


async def test_a_job_submitted_with_a_local_ca_proxy_is_accepted(
    dirac_robot: DiracBridge, provider: LocalCAProvider
) -> None:
    proxy = (await provider.issue(ProxyRequest(USER, "cta", "cta_user", 7200))).pem.decode()
    jdl = build_jdl(JobDescription(slots=[Slot("localca1", 0)], cpu_time_s=600, input_sandbox=[]))
    files = {
        WRAPPER: (PAYLOAD / WRAPPER).read_text(),
        TASKS_FILE: '[{"argv": ["echo", "hello"], "env": {}}]',
    }
    # DIRAC services cache registry lookups for a minute after a new user is registered.
    deadline = time.monotonic() + 120
    while True:
        try:
            ids = await dirac_robot.call("submit", {"jdl": jdl, "files": files}, proxy=proxy)
            break
        except (BridgeCallError, TransientError) as exc:
            # Refused as unknown while the services' registry caches are stale.
            if time.monotonic() > deadline or (
                isinstance(exc, BridgeCallError) and ("Unauthorized" not in str(exc))
            ):
                raise
            await asyncio.sleep(5)
    assert len(ids) == 1 and int(ids[0]) > 0
    found = await dirac_robot.call(
        "find", {"conditions": {"JobGroup": "gridgate.localca1"}}, proxy=proxy
    )
    assert int(ids[0]) in found
    states = await dirac_robot.call("status", {"ids": ids})
    assert states[str(ids[0])]["Status"] in {
        "Received",
        "Checking",
        "Waiting",
        "Matched",
        "Running",
        "Rescheduled",
        "Done",
        "Failed",
    }
    await dirac_robot.call("kill", {"ids": ids}, proxy=proxy)
    await asyncio.sleep(2)  # DIRAC refuses a delete in the same second as the kill
    await dirac_robot.call("delete", {"ids": ids}, proxy=proxy)
    states = await dirac_robot.call("status", {"ids": ids})
    assert states[str(ids[0])]["Status"] in {"Killed", "Deleted", "Done"}


async def test_a_job_runs_to_done_and_its_output_sandbox_comes_back(
    dirac_robot: DiracBridge, dirac_testbed: dict[str, str], tmp_path: Path
) -> None:
    # The testbed's alice has a long proxy in the ProxyManager, so the JobAgent runs her jobs.
    proxy = await asyncio.to_thread(Path(dirac_testbed["GRIDGATE_DIRAC_ALICE_PROXY"]).read_text)
    marker = f"sandbox-{secrets.token_hex(4)}"
    jdl = build_jdl(
        JobDescription(slots=[Slot(marker.replace("-", ""), 0)], cpu_time_s=600, input_sandbox=[])
    )
    tasks = [{"argv": ["{python}", "-c", f"print({marker!r})"], "env": {}}]
    files = {WRAPPER: (PAYLOAD / WRAPPER).read_text(), TASKS_FILE: json.dumps(tasks)}
    ids = await dirac_robot.call("submit", {"jdl": jdl, "files": files}, proxy=proxy)
    status = ""
    for _ in range(120):
        status = (await dirac_robot.call("status", {"ids": ids}))[str(ids[0])]["Status"]
        if status in {"Done", "Failed", "Killed"}:
            break
        await asyncio.sleep(2)
    assert status == "Done"
    names = await dirac_robot.call(
        "output", {"id": ids[0], "destination": str(tmp_path)}, proxy=proxy
    )
    assert "std.out" in names  # DIRAC leaves an empty std.err out of the sandbox
    assert marker in await asyncio.to_thread((tmp_path / "std.out").read_text)

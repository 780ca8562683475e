"""The dirac-proxymanager provider against the real DIRAC testbed: a token's ``sub`` becomes the
user's own proxy, downloaded from DIRAC's ProxyManager by gridgate's robot."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from gridgate.auth.config import AuthSettings
from gridgate.auth.groups import GroupNotHeldError
from gridgate.auth.main import create_app
from gridgate.auth.proxies.base import ProxyRequest
from gridgate.auth.proxies.dirac_proxymanager import (
    DiracProxyManagerProvider,
    DiracUnavailableError,
    DiracUserUnknownError,
    NoStoredProxyError,
)
from gridgate.core.errors import TransientError
from gridgate.dirac.bridge import BridgeCallError, DiracBridge
from gridgate.dirac.testbed import DiracTestbed
from gridgate.iam import DevIssuer
from gridgate.testing.services import free_port
from gridgate.testing.x509 import openssl_verify

pytestmark = pytest.mark.dirac
UNKNOWN_SUB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def provider(dirac_robot: DiracBridge) -> DiracProxyManagerProvider:
    return DiracProxyManagerProvider(dirac_robot)


async def test_alices_sub_gets_her_own_group_proxy_from_the_proxymanager(
    provider: DiracProxyManagerProvider,
    dirac_robot: DiracBridge,
    dirac_testbed: dict[str, str],
    tmp_path: Path,
) -> None:
    alice_dn = dirac_testbed["GRIDGATE_DIRAC_ALICE_DN"]
    request = ProxyRequest(dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], "cta", "cta_user", 3600)
    issued = await provider.issue(request)

    assert issued.provider == "dirac-proxymanager"
    assert issued.identity == alice_dn
    assert issued.subject.startswith(alice_dn + "/CN=")
    assert 3500 < issued.seconds_left(datetime.now(UTC)) <= 3600
    assert b"PRIVATE KEY" in issued.pem
    # what DIRAC itself reads from the chain
    info = await dirac_robot.call("chain_info", {"pem": issued.pem.decode()})
    assert info["identity"] == alice_dn
    assert info["group"] == "cta_user"
    assert info["isProxy"] is True
    assert info["isLimitedProxy"] is False
    assert info["username"] == "alice"
    assert info["validGroup"] is True
    assert 3500 < info["secondsLeft"] <= 3600
    # what any grid service's OpenSSL makes of it
    verified = await asyncio.to_thread(
        openssl_verify, tmp_path, Path(dirac_testbed["GRIDGATE_DIRAC_CA_CERT"]), issued.pem
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith("OK")


async def test_the_downloaded_proxy_submits_a_job_as_alice(
    provider: DiracProxyManagerProvider, dirac_robot: DiracBridge, dirac_testbed: dict[str, str]
) -> None:
    sub = dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"]
    proxy = (await provider.issue(ProxyRequest(sub, "cta", "cta_user", 1800))).pem
    group = f"gridgate.pm-{secrets.token_hex(4)}"  # JobDB keeps 32 characters
    jdl = f'[Executable = "/bin/true"; JobName = "proxymanager"; JobGroup = "{group}"; ]'
    ids = await dirac_robot.call("submit", {"jdl": jdl, "files": {}}, proxy=proxy)
    try:
        assert (
            await dirac_robot.call("find", {"conditions": {"JobGroup": group}}, proxy=proxy) == ids
        )
        attributes = await dirac_robot.call(
            "attributes", {"ids": ids, "names": ["Owner", "OwnerGroup"]}, proxy=proxy
        )
        assert attributes[str(ids[0])] == {"Owner": "alice", "OwnerGroup": "cta_user"}
    finally:
        try:
            await dirac_robot.call("kill", {"ids": ids}, proxy=proxy)
            await asyncio.sleep(2)  # DIRAC refuses a delete in the same second as the kill
        except BridgeCallError:
            pass  # already finished: /bin/true is quick
        await dirac_robot.call("delete", {"ids": ids}, proxy=proxy)


async def test_an_unknown_sub_is_forbidden(provider: DiracProxyManagerProvider) -> None:
    with pytest.raises(DiracUserUnknownError) as refused:
        await provider.issue(ProxyRequest(UNKNOWN_SUB, "cta", "cta_user", 3600))
    assert refused.value.status == 403
    assert refused.value.to_problem()["type"] == "urn:gridgate:problem:dirac-user-unknown"
    with pytest.raises(DiracUserUnknownError):
        await provider.max_lifetime_s(UNKNOWN_SUB, "cta", "cta_user")


async def test_a_group_the_user_does_not_hold_is_refused(
    provider: DiracProxyManagerProvider, dirac_robot: DiracBridge, dirac_testbed: dict[str, str]
) -> None:
    sub = dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"]
    with pytest.raises(GroupNotHeldError) as refused:
        await provider.issue(ProxyRequest(sub, "km3net", "km3net_user", 3600))
    assert refused.value.status == 403
    with pytest.raises(GroupNotHeldError):
        await provider.max_lifetime_s(sub, "km3net", "km3net_user")
    # DIRAC's ProxyManager refuses it too, should the Registry check ever be skipped
    with pytest.raises(BridgeCallError, match="Invalid group km3net_user"):
        await dirac_robot.call(
            "download_proxy",
            {
                "dn": dirac_testbed["GRIDGATE_DIRAC_ALICE_DN"],
                "group": "km3net_user",
                "lifetime_s": 3600,
            },
        )


async def test_a_proxy_longer_than_the_stored_one_is_refused(
    provider: DiracProxyManagerProvider, dirac_testbed: dict[str, str]
) -> None:
    sub = dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"]
    stored = await provider.max_lifetime_s(sub, "cta", "cta_user")
    with pytest.raises(NoStoredProxyError) as refused:
        await provider.issue(ProxyRequest(sub, "cta", "cta_user", stored + 86400))
    assert refused.value.to_problem()["type"] == "urn:gridgate:problem:dirac-proxy-missing"
    assert 0 < refused.value.extra["stored_left_s"] <= stored


async def test_max_lifetime_is_what_is_left_of_the_stored_proxy(
    provider: DiracProxyManagerProvider, dirac_testbed: dict[str, str]
) -> None:
    # The testbed uploads 30-day proxies of its users when it is set up.
    left = await provider.max_lifetime_s(
        dirac_testbed["GRIDGATE_DIRAC_BOB_SUB"], "km3net", "km3net_user"
    )
    assert 2 * 86400 < left <= 30 * 86400


def unreachable_root(dirac_testbed: dict[str, str], root: Path) -> Path:
    """A copy of the robot's client root naming a configuration server nobody listens for."""
    robot_cfg = Path(dirac_testbed["GRIDGATE_DIRAC_ROBOT_ROOT"]) / "etc" / "dirac.cfg"
    cfg = robot_cfg.read_text().replace(
        dirac_testbed["GRIDGATE_DIRAC_CS_URL"],
        f"dips://localhost:{free_port()}/Configuration/Server",
    )
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "dirac.cfg").write_text(cfg)
    return root


async def test_an_unreachable_dirac_is_a_503_problem(
    dirac_testbed: dict[str, str], tmp_path: Path
) -> None:
    connection = DiracTestbed.from_variables(dirac_testbed).connection
    root = unreachable_root(dirac_testbed, tmp_path)
    unreachable = DiracBridge(connection.model_copy(update={"root": root}).environment(), size=1)
    provider = DiracProxyManagerProvider(unreachable)
    try:
        with pytest.raises(DiracUnavailableError) as refused:
            await provider.issue(
                ProxyRequest(dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], "cta", "cta_user", 3600)
            )
    finally:
        await provider.close()
    assert isinstance(refused.value.__cause__, TransientError)
    assert refused.value.status == 503
    assert refused.value.retry_after_s


async def test_a_dirac_that_does_not_answer_in_time_is_a_503_problem(
    dirac_robot: DiracBridge, dirac_testbed: dict[str, str]
) -> None:
    # The real testbed, a bridge with no patience: what a heavily loaded machine does to a
    # download.
    impatient = DiracBridge(dirac_robot.environment, size=1, timeout_s=0.001)
    provider = DiracProxyManagerProvider(impatient)
    try:
        with pytest.raises(DiracUnavailableError, match="did not answer"):
            await provider.issue(
                ProxyRequest(dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], "cta", "cta_user", 3600)
            )
    finally:
        await provider.close()


@asynccontextmanager
async def auth_service(
    dirac_testbed: dict[str, str], workdir: Path, *, root: Path | None = None
) -> AsyncIterator[AuthService]:
    """The auth service configured for dirac-proxymanager, served over HTTP until the block
    ends (its lifespan then runs to the end)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    issuer_url = f"{url}/dev-issuer"
    settings = AuthSettings(
        dev_issuer=True,
        dev_issuer_url=issuer_url,
        dev_issuer_key_file=workdir / "issuer-key.json",
        oidc_issuer=issuer_url,
        provider="dirac-proxymanager",
        dirac_python=Path(dirac_testbed["GRIDGATE_DIRAC_PYTHON"]),
        dirac_root=root or Path(dirac_testbed["GRIDGATE_DIRAC_ROBOT_ROOT"]),
        dirac_cert_dir=Path(dirac_testbed["X509_CERT_DIR"]),
        dirac_bridge_processes=1,
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
        await asyncio.sleep(0.02)
    try:
        yield AuthService(url, app.state.dev_issuer, app.state.proxies.provider.bridge)
    finally:
        server.should_exit = True
        await task


@dataclass
class AuthService:
    url: str
    issuer: DevIssuer
    bridge: DiracBridge

    async def ask(self, token: str, body: dict[str, object]) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as http:
            return await http.post(
                "/api/v1/proxies", json=body, headers={"Authorization": f"Bearer {token}"}
            )


async def test_the_auth_service_swaps_a_token_for_a_proxymanager_proxy(
    dirac_testbed: dict[str, str], tmp_path: Path
) -> None:
    async with auth_service(dirac_testbed, tmp_path) as auth:
        alice = auth.issuer.mint(
            dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], groups=["cta"], audience="gridgate"
        )
        answer = await auth.ask(alice, {"group": "cta_user", "lifetime_s": 3600})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/x-pem-file"
        assert answer.headers["x-proxy-identity"] == dirac_testbed["GRIDGATE_DIRAC_ALICE_DN"]
        stranger = auth.issuer.mint(UNKNOWN_SUB, groups=["cta"], audience="gridgate")
        refused = await auth.ask(stranger, {})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:gridgate:problem:dirac-user-unknown"


async def test_the_auth_service_stops_its_dirac_bridge_at_shutdown(
    dirac_testbed: dict[str, str], tmp_path: Path
) -> None:
    async with auth_service(dirac_testbed, tmp_path) as auth:
        bob = auth.issuer.mint(
            dirac_testbed["GRIDGATE_DIRAC_BOB_SUB"], groups=["km3net"], audience="gridgate"
        )
        answer = await auth.ask(bob, {})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-proxy-identity"] == dirac_testbed["GRIDGATE_DIRAC_BOB_DN"]
        processes = [p.process for p in auth.bridge._processes]
        assert processes and all(p.returncode is None for p in processes)
    assert all(p.returncode is not None for p in processes)


async def test_the_auth_service_answers_503_while_dirac_is_unreachable(
    dirac_testbed: dict[str, str], tmp_path: Path
) -> None:
    root = unreachable_root(dirac_testbed, tmp_path / "root")
    async with auth_service(dirac_testbed, tmp_path, root=root) as auth:
        alice = auth.issuer.mint(
            dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], groups=["cta"], audience="gridgate"
        )
        answer = await auth.ask(alice, {"group": "cta_user", "lifetime_s": 3600})
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:gridgate:problem:dirac-unavailable"
    assert int(answer.headers["retry-after"]) > 0

"""diracx-user-link against a real DiracX 0.7.0 whose VOs log in at our IdP testbed.

A DiracX instance of this module's own (testbeds/diracx on other ports, access tokens of
1 minute, refresh tokens of 3 minutes) trusts a private IdP testbed (oidc-provider, client
``diracx``). Users link their DiracX account through the auth service's routes and approve
DiracX's device login at the IdP as a browser would; jobs then run with their links. The
robot's bulk status still uses the testbed's legacy-exchange key.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from pydantic import SecretStr

from gridgate.auth.links.engine import create_engine
from gridgate.auth.links.keys import LinkKey
from gridgate.auth.links.sealing import TokenBox
from gridgate.auth.links.service import DiracXLinkService
from gridgate.cli.app import cli
from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.contracts.internal import DIRACX_TOKEN_PATH, INTERNAL_TOKEN_HEADER
from gridgate.diracx.facility import DiracXFacility
from gridgate.diracx.oauth import DiracXOAuth
from gridgate.diracx.testbed import FACILITY, DiracXTestbed
from gridgate.diracx.tokens import ExchangeTokens, LegacyExchange
from gridgate.testing.diracx import private_diracx
from gridgate.testing.idp import approve_diracx_login, private_idp
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

pytestmark = [pytest.mark.diracx, pytest.mark.asyncio(loop_scope="session")]
FINAL = {"COMPLETED", "ERROR", "ABORTED"}
LINKS = "/api/diracx-links"  # the gateway's, relayed to the auth service
# gridgate's users (IAM subjects of the gateway's issuer) and the IdP accounts they log in as
USERS = {"ada": ("cta", "alice"), "ben": ("km3net", "bob"), "cy": ("cta", None)}


@pytest.fixture(scope="module")
def linked_diracx(
    diracx_testbed: DiracXTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DiracXTestbed]:
    """A private IdP and a private DiracX whose VOs use it."""
    state = tmp_path_factory.mktemp("diracx-link")
    idp_port, port, s3_port = free_port(), free_port(), free_port()
    redirects = (f"http://127.0.0.1:{port}/api/auth/device/complete",)
    idp = private_idp(state / "idp-state", idp_port, diracx_redirect_uris=redirects)
    next(idp)
    try:
        venv = Path(diracx_testbed.variables["GRIDGATE_DIRACX_PYTHON"]).parent.parent
        with private_diracx(
            state, port=port, s3_port=s3_port, idp_port=idp_port, venv=venv
        ) as testbed:
            yield testbed
    finally:
        idp.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def link_stack(
    linked_diracx: DiracXTestbed, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DevStack]:
    data = tmp_path_factory.mktemp("diracx-link-stack")
    options = linked_diracx.auth_options() | {
        "diracx_mode": "user-link",
        "diracx_users": {},
        "database_url": SecretStr(f"sqlite+aiosqlite:///{data / 'auth-links.db'}"),
        "diracx_link_keys": SecretStr(Fernet.generate_key().decode()),
        # access tokens last 60 s here: refresh when 20 s are left
        "diracx_link_refresh_ahead_s": 20,
    }
    with rabbitmq_vhost() as vhost_url:
        stack = DevStack(
            data_dir=data,
            port=free_port(),
            broker_url=vhost_url,
            diracx_facilities={FACILITY: linked_diracx.connection},
            auth_options=options,
            gateway_options={
                # small: a job may then be submitted seconds before its link runs out
                "credential_margin_s": 3,
                "diracx_links": True,
                # the link's end is every linked job's credential end; look for it often
                "credential_watch_interval_s": 0.3,
            },
        )
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def users(link_stack: DevStack) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    issuer = dev_issuer(link_stack.data_dir, link_stack.host, link_stack.port)
    clients = {}
    for name, (vo, _) in USERS.items():
        token = issuer.mint(name, groups=[vo], audience=AUDIENCE)
        clients[name] = httpx.AsyncClient(
            base_url=link_stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=90
        )
    yield clients
    for client in clients.values():
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def robot_view(linked_diracx: DiracXTestbed) -> AsyncIterator[DiracXFacility]:
    async with httpx.AsyncClient(base_url=linked_diracx.connection.url) as http:
        tokens = ExchangeTokens(
            LegacyExchange(http, linked_diracx.legacy_key()), robot=linked_diracx.robot
        )
        facility = DiracXFacility(FACILITY, linked_diracx.connection, tokens)
        yield facility
        await facility.close()


async def link(http: httpx.AsyncClient, vo: str, login: str) -> dict[str, Any]:
    """Link the user's DiracX account: start, approve at the IdP as ``login``, complete."""
    started = await http.post(LINKS, json={"vo": vo})
    assert started.status_code == 201, started.text
    pending = started.json()
    assert pending["status"] == "pending" and pending["user_code"]
    waiting = await http.post(f"{LINKS}/{vo}/{pending['group']}/complete")
    assert waiting.json()["status"] == "pending"
    await asyncio.to_thread(approve_diracx_login, pending["verification_uri"], login)
    done = await http.post(f"{LINKS}/{vo}/{pending['group']}/complete")
    assert done.status_code == 200, done.text
    return dict(done.json())


def cli_link(url: str, token: str, vo: str, login: str) -> Result:
    """``gridgate diracx-link VO``, approved meanwhile at the IdP as ``login`` by a browser
    that finds the login to approve in the user's link list."""

    def approve() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pending = [
                    x["verification_uri"]
                    for x in api.get(LINKS).json()["links"]
                    if x["vo"] == vo and x["verification_uri"]
                ]
                if pending:
                    approve_diracx_login(pending[0], login)
                    return
                time.sleep(0.5)

    browser = threading.Thread(target=approve)
    browser.start()
    try:
        return CliRunner().invoke(cli, ["--url", url, "--token", token, "diracx-link", vo])
    finally:
        browser.join()


async def submit(http: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await http.post(
        "/api/jobs",
        data={"PHASE": "RUN", "facility": FACILITY, "workflow": "hello-world", **fields},
    )


async def wait_until(
    http: httpx.AsyncClient, url: str, done: Callable[[dict[str, Any]], bool], within_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    job = (await http.get(url)).json()
    while not done(job) and time.monotonic() < deadline:
        job = (await http.get(url, params={"WAIT": 5, "PHASE": job["phase"]})).json()
    return job


async def owners(robot_view: DiracXFacility, ids: list[str]) -> set[tuple[str, str]]:
    rows = await robot_view._search(
        await robot_view.tokens.robot(),
        [{"parameter": "JobID", "operator": "in", "values": [int(i) for i in ids]}],
        ["JobID", "Owner", "VO"],
    )
    return {(row["Owner"], row["VO"]) for row in rows}


def dirac_ids(job: dict[str, Any]) -> list[str]:
    return [str(task["facilityJobId"]) for task in job["jobInfo"]["tasks"]]


async def test_a_job_is_refused_with_a_problem_when_its_owner_has_no_link(users) -> None:
    refused = await submit(users["cy"])

    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:gridgate:problem:diracx-link-missing"
    assert problem["link_status"] == "never linked"
    assert "diracx-links" in problem["detail"]


async def test_linked_users_jobs_complete_as_their_own_diracx_users(
    users, robot_view, link_stack: DevStack
) -> None:
    ada = await link(users["ada"], "cta", "alice")
    ben = await link(users["ben"], "km3net", "bob")
    assert (ada["status"], ada["diracx_user"], ada["group"]) == ("linked", "alice", "cta_user")
    assert (ben["status"], ben["diracx_user"]) == ("linked", "bob")
    # DiracX's refresh tokens last 3 minutes here: the link says when it runs out
    assert 100 < ada["expires_at"] - time.time() <= 180
    listed = (await users["ada"].get(LINKS)).json()["links"]
    assert [(x["vo"], x["status"]) for x in listed] == [("cta", "linked")]
    assert "token" not in str(listed).replace("user_code", "")

    urls = []
    for name in ("ada", "ben"):
        created = await submit(users[name], executionduration="60")
        assert created.status_code == 303, created.text
        urls.append((name, created.headers["location"]))
    jobs = [
        await wait_until(users[name], url, lambda j: j["phase"] in FINAL, 240) for name, url in urls
    ]

    assert [job["phase"] for job in jobs] == ["COMPLETED", "COMPLETED"], jobs
    assert await owners(robot_view, dirac_ids(jobs[0])) == {("alice", "cta")}
    assert await owners(robot_view, dirac_ids(jobs[1])) == {("bob", "km3net")}
    # no token in the auth service's database in clear
    stored = (link_stack.data_dir / "auth-links.db").read_bytes()
    assert b"eyJ" not in stored


async def live_cta_link(http: httpx.AsyncClient) -> dict[str, Any]:
    """The user's live cta link: made by an earlier test when the file runs in order, made
    here when a test runs alone."""
    links = (await http.get(LINKS)).json()["links"]
    live = [
        x
        for x in links
        if x["vo"] == "cta" and x["status"] == "linked" and x["expires_at"] > time.time() + 60
    ]
    return live[0] if live else await link(http, "cta", "alice")


async def test_access_tokens_are_refreshed_from_the_link(users, link_stack: DevStack) -> None:
    """DiracX's access tokens last 60 s: after that the auth service refreshes with the
    stored (rotated) refresh token, while the job runs."""
    http = users["ada"]
    await live_cta_link(http)
    created = await submit(http, executionduration="30")
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    job_id = url.rsplit("/", 1)[-1]
    internal = httpx.AsyncClient(
        base_url=f"{link_stack.url}/auth",
        headers={INTERNAL_TOKEN_HEADER: link_stack.internal_token},
        timeout=60,
    )
    async with internal:
        first = (await internal.post(DIRACX_TOKEN_PATH, json={"job_id": job_id})).json()
        # wait past the first access token's refresh point: the next one is a new token
        await asyncio.sleep(max(0.0, first["expires_at"] - 15 - time.time()))
        # the job may have ended meanwhile: its owner's token is served for the grace period
        second = await internal.post(DIRACX_TOKEN_PATH, json={"job_id": job_id})
    assert second.status_code == 200, second.text
    assert second.json()["access_token"] != first["access_token"]
    assert second.json()["expires_at"] > first["expires_at"]
    job = await wait_until(http, url, lambda j: j["phase"] in FINAL, 240)
    assert job["phase"] == "COMPLETED", job


async def at_diracx(http: httpx.AsyncClient, url: str, within_s: float) -> dict[str, Any]:
    """The job as soon as DiracX holds every task (short polls: the testbed's dummy executor
    finishes a job some 5 to 10 s after it arrives)."""
    deadline = time.monotonic() + within_s
    while True:
        job = (await http.get(url)).json()
        tasks = job["jobInfo"]["tasks"]
        if (tasks and all(t.get("facilityJobId") for t in tasks)) or job["phase"] in FINAL:
            return dict(job)
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)


async def diracx_jobs_of(robot_view: DiracXFacility, user: str) -> int:
    rows = await robot_view._search(
        await robot_view.tokens.robot(),
        [{"parameter": "Owner", "operator": "eq", "value": user}],
        ["JobID"],
    )
    return len(rows)


async def test_a_job_at_diracx_is_followed_to_its_end_after_its_link_is_revoked(
    users, robot_view
) -> None:
    """The owner unlinks while their job is at DiracX: the job is still followed (the robot
    reads status) and collected (the robot reads the outputs the owner can no longer), while
    the owner's next submission is refused and nothing more reaches DiracX."""
    http = users["ada"]
    await live_cta_link(http)
    created = await submit(http, executionduration="30")
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    held = await at_diracx(http, url, 60)
    assert held["phase"] not in FINAL, held

    unlinked = await http.delete(f"{LINKS}/cta/cta_user")
    assert unlinked.status_code == 204
    still = (await http.get(url)).json()
    job = await wait_until(http, url, lambda j: j["phase"] in FINAL, 120)

    assert still["phase"] not in FINAL, still  # the link went mid-job
    assert job["phase"] == "COMPLETED", job
    at_dirac = await diracx_jobs_of(robot_view, "alice")
    refused = await submit(http)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "urn:gridgate:problem:diracx-link-missing"
    assert refused.json()["link_status"] == "revoked"
    assert await diracx_jobs_of(robot_view, "alice") == at_dirac


@pytest.mark.long  # it waits out the link (3 minutes after the login): make test-long
async def test_jobs_sent_just_before_a_link_runs_out_end_and_the_next_is_refused(
    users, robot_view
) -> None:
    """DiracX keeps a refresh token's end when it rotates it: the link runs out 3 minutes
    after the login. Jobs sent seconds before it end as they should: those DiracX holds are
    followed and collected (by the robot once the owner has no token left), one still on its
    way ends in ERROR naming the link; the next submission is refused with what to do, and
    nothing more reaches DiracX. The testbed's dummy executor often ends a job within 5 s,
    before the link runs out, so this cannot promise a job still running at that moment; the
    same path (owner's token refused, the robot collects) is proven deterministically by
    test_a_job_at_diracx_is_followed_to_its_end_after_its_link_is_revoked."""
    http = users["ada"]
    linked = await link(http, "cta", "alice")  # a fresh link: 3 minutes from now
    # The gateway takes a job only if the link outlasts its duration plus the 3 s margin.
    urls = []
    for before_end in (7, 6, 5):
        await asyncio.sleep(max(0.0, linked["expires_at"] - before_end - time.time()))
        created = await submit(http, executionduration="1")
        assert created.status_code == 303, created.text
        urls.append(created.headers["location"])
    await asyncio.sleep(max(0.0, linked["expires_at"] + 0.5 - time.time()))
    at_the_end = [(await http.get(url)).json() for url in urls]

    jobs = [await wait_until(http, url, lambda j: j["phase"] in FINAL, 120) for url in urls]

    held = [
        i
        for i, job in enumerate(at_the_end)
        if job["jobInfo"]["tasks"] and all(t.get("facilityJobId") for t in job["jobInfo"]["tasks"])
    ]
    for i, job in enumerate(jobs):
        if i in held:  # DiracX held it when the link ran out: followed and collected
            assert job["phase"] == "COMPLETED", job
        else:  # still on its way to DiracX: not submitted without a link
            assert job["phase"] == "ERROR" and "DiracX link" in str(job), job
    at_dirac = await diracx_jobs_of(robot_view, "alice")
    refused = await submit(http)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "urn:gridgate:problem:diracx-link-missing"
    assert refused.json()["link_status"] == "expired"
    assert await diracx_jobs_of(robot_view, "alice") == at_dirac
    listed = next(x for x in (await http.get(LINKS)).json()["links"] if x["vo"] == "cta")
    assert listed["status"] == "expired"
    # linking again starts from scratch: the run-out link is no working link to keep
    again = await http.post(LINKS, json={"vo": "cta"})
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "pending"


async def test_the_owner_is_warned_once_before_the_link_runs_out(users, link_stack) -> None:
    """The link's end is the job's credential end (ADR 0016): the gateway's housekeeping
    tells the owner on gridgate.events before it comes, once per job, not every round."""
    connection = await aio_pika.connect(link_stack.broker_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS_EXCHANGE, routing_key="job.cta.credential_expiring")
        http = users["ada"]
        linked = await live_cta_link(http)
        created = await submit(http, executionduration="30")
        assert created.status_code == 303, created.text
        job_id = created.headers["location"].rsplit("/", 1)[-1]
        job = await wait_until(
            http, created.headers["location"], lambda j: j["phase"] in FINAL, 120
        )
        await asyncio.sleep(3)  # ten more housekeeping rounds
        events = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            events.append(json.loads(message.body))
    finally:
        await connection.close()

    mine = [e for e in events if e["data"]["job_id"] == job_id]
    assert len(mine) == 1, events
    event = mine[0]
    assert event["type"] == "org.gridgate.job.credential_expiring.v1"
    assert event["data"]["owner"] == "ada"
    assert datetime.fromisoformat(event["time"]).timestamp() < linked["expires_at"]
    end = datetime.fromtimestamp(linked["expires_at"], UTC).isoformat(timespec="seconds")
    assert end[:16] in event["data"]["detail"], event  # the link's end, to the minute
    warned = [h for h in job["jobInfo"]["history"] if "credential runs out" in (h["detail"] or "")]
    assert len(warned) == 1, job


async def test_a_revoked_link_is_refused_with_the_problem(users) -> None:
    http = users["ben"]
    revoked = await http.delete(f"{LINKS}/km3net/km3net_user")
    assert revoked.status_code == 204

    refused = await submit(http)

    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "urn:gridgate:problem:diracx-link-missing"
    assert refused.json()["link_status"] == "revoked"
    listed = (await http.get(LINKS)).json()["links"]
    assert [(x["status"], x["reason"]) for x in listed] == [("revoked", "unlinked by its owner")]


async def test_a_link_revoked_at_diracx_is_found_at_the_next_refresh(
    users, linked_diracx: DiracXTestbed
) -> None:
    """The user revokes their refresh tokens at DiracX itself: the auth service learns it
    when it next refreshes (DiracX refuses), marks the link revoked, the job that needed the
    token ends in ERROR saying so, and the next submission is refused."""
    http = users["ben"]
    # this time with the CLI, as a user would: it prints the URI and waits for the approval
    token = http.headers["Authorization"].removeprefix("Bearer ")
    linking = asyncio.to_thread(cli_link, str(http.base_url), token, "km3net", "bob")
    result = await linking
    assert result.exit_code == 0, result.output
    assert "Linked to DiracX as bob (km3net/km3net_user)" in result.output
    # in a thread: the stack answers from this test's event loop
    listed = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["--url", str(http.base_url), "--token", token, "diracx-links", "--json"],
    )
    linked = next(x for x in json.loads(listed.stdout) if x["vo"] == "km3net")
    assert linked["status"] == "linked"
    # as bob at DiracX (a token the test mints with the testbed's key): revoke all his tokens
    async with httpx.AsyncClient(base_url=linked_diracx.connection.url, timeout=30) as dx:
        exchange = LegacyExchange(dx, linked_diracx.legacy_key())
        bearer = {"Authorization": f"Bearer {await exchange.token(linked_diracx.users['bob'])}"}
        tokens = (await dx.get("/api/auth/refresh-tokens", headers=bearer)).json()
        assert tokens
        for token in tokens:
            revoked = await dx.delete(f"/api/auth/refresh-tokens/{token['JTI']}", headers=bearer)
            assert revoked.status_code == 200, revoked.text
    # the stored access token (60 s) still serves until 20 s are left; then a refresh
    listed = next(x for x in (await http.get(LINKS)).json()["links"] if x["vo"] == "km3net")
    await asyncio.sleep(45)
    created = await submit(http, executionduration="30")
    assert created.status_code == 303, created.text

    job = await wait_until(http, created.headers["location"], lambda j: j["phase"] in FINAL, 180)

    assert job["phase"] == "ERROR", job
    assert "DiracX link" in str(job), job
    refused = await submit(http)
    assert refused.status_code == 403, refused.text
    assert refused.json()["link_status"] == "revoked"
    after = next(x for x in (await http.get(LINKS)).json()["links"] if x["vo"] == "km3net")
    assert (listed["status"], after["status"]) == ("linked", "revoked")
    assert after["reason"] == "refused by DiracX (revoked)"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_replicas_refreshing_at_once_never_present_a_rotated_token(
    linked_diracx: DiracXTestbed, database: str, tmp_path: Path
) -> None:
    """Two auth replicas on one link database, eight refreshes at once. DiracX revokes every
    token of a user who presents a rotated-out refresh token again, so a single refresh
    outside the row lock would end the link; with it, each refresh uses the latest token."""
    name = None
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'links.db'}"
    else:
        name, url = await create_postgres_database()
    box = TokenBox(Fernet.generate_key().decode())
    engines = [create_engine(url), create_engine(url)]
    try:
        async with httpx.AsyncClient(base_url=linked_diracx.connection.url, timeout=60) as http:
            # an access token never has an hour left here: every call refreshes
            replicas = [
                DiracXLinkService(engine, box, DiracXOAuth(http), min_left_s=3600)
                for engine in engines
            ]
            # both bring the schema up at once (replicas starting together)
            assert await asyncio.gather(*(r.links("dana") for r in replicas)) == [[], []]
            key = LinkKey("dana", "cta", "cta_user")
            started = await replicas[0].start(key)
            assert started.verification_uri is not None
            await asyncio.to_thread(approve_diracx_login, started.verification_uri, "alice")
            assert (await replicas[1].complete(key)).status == "linked"

            tokens = await asyncio.gather(
                *(replica.access_token(key) for replica in replicas for _ in range(4))
            )

            assert len({token.access_token for token in tokens}) == 8
            assert [view.status for view in await replicas[1].links("dana")] == ["linked"]
            # the chain is intact: one more refresh still works, as alice
            last = await replicas[0].access_token(key)
            whoami = await http.get(
                "/api/auth/userinfo", headers={"Authorization": f"Bearer {last.access_token}"}
            )
            assert whoami.json()["preferred_username"] == "alice"
    finally:
        for engine in engines:
            await engine.dispose()
        if name is not None:
            await drop_postgres_database(name)

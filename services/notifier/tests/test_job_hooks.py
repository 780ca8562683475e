"""A job's notification URL (its hook) against a running stack, on SQLite and PostgreSQL:
real jobs through the gateway, real RabbitMQ, a real receiver that verifies every signature
with the Standard Webhooks reference library (docs/adr/0018-job-notification-url.md)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from receiver import Receiver, verified
from standardwebhooks import WebhookVerificationError
from test_webhooks import job_event, publish

from gridgate.contracts import Phase

PROBLEM = "application/problem+json"
UNSAFE = "urn:gridgate:problem:unsafe-webhook-url"


async def hook_secret(http: Any) -> str:
    response = await http.post("/api/subscriptions/job-hook-secret")
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    return str(secret)


async def create_job(http: Any, **fields: Any) -> str:
    response = await http.post("/api/jobs", json={"workflow": "hello-world", **fields})
    assert response.status_code == 303, response.text
    return str(response.headers["location"].rsplit("/", 1)[1])


async def hooks_of(http: Any, job_id: str) -> list[dict[str, Any]]:
    response = await http.get("/api/subscriptions", params={"job_id": job_id})
    assert response.status_code == 200, response.text
    return list(response.json()["subscriptions"])


async def until_final(receiver: Receiver, name: str, secret: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(60):
        while True:
            payloads = [verified(secret, r) for r in receiver.received[name]]
            if any(p["data"]["phase"] in ("COMPLETED", "ERROR") for p in payloads):
                return payloads
            await asyncio.sleep(0.2)


async def test_a_job_reports_to_its_notification_url_in_order_signed(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    owner = f"hook-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    secret = await hook_secret(http)
    assert (await http.get("/api/subscriptions/job-hook-secret")).json()["shown"] is True
    url = receiver.url(owner)
    job_id = await create_job(http, notification_url=url, PHASE="RUN")
    payloads = await until_final(receiver, owner, secret)
    await asyncio.sleep(1.0)  # a late or repeated delivery would have come by now
    payloads = [verified(secret, r) for r in receiver.received[owner]]
    assert {p["data"]["job_id"] for p in payloads} == {job_id}
    # Every event of the job, each once, in the job's order (numbered 1, 2, 3, ...).
    numbers = [p["data"]["sequence"] for p in payloads]
    assert numbers == list(range(1, len(numbers) + 1))
    phases = [p["data"]["phase"] for p in payloads]
    assert phases[0] == "QUEUED" and "EXECUTING" in phases and phases[-1] == "COMPLETED"
    # The job shows its hook; the hook is listed as the owner's, with its delivery log.
    job = (await http.get(f"/api/jobs/{job_id}")).json()
    assert job["jobInfo"]["notificationUrl"] == url
    [hook] = await hooks_of(http, job_id)
    assert hook["kind"] == "job-hook" and hook["url"] == url and hook["job_ids"] == [job_id]
    assert "secret" not in hook
    listed = (await http.get("/api/subscriptions", params={"kind": "subscription"})).json()
    assert listed == {"subscriptions": []}  # a hook is not one of the owner's subscriptions
    log = (await http.get(f"/api/subscriptions/{hook['id']}/deliveries")).json()["deliveries"]
    assert sorted(d["event_id"] for d in log) == sorted(p["id"] for p in payloads)
    assert {d["status"] for d in log} == {"delivered"}


async def test_a_deleted_hook_is_not_made_again_and_the_form_field_works(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    owner = f"form-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    secret = await hook_secret(http)
    # A form, with the name as the job's JSON spells it (field names are case-insensitive).
    response = await http.post(
        "/api/jobs", data={"workflow": "hello-world", "notificationUrl": receiver.url(owner)}
    )
    assert response.status_code == 303, response.text
    job_id = response.headers["location"].rsplit("/", 1)[1]
    [pending] = await receiver.wait_for(owner, 1)
    assert verified(secret, pending)["data"]["phase"] == "PENDING"
    [hook] = await hooks_of(http, job_id)
    assert (await http.delete(f"/api/subscriptions/{hook['id']}")).status_code == 204
    assert (await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})).status_code in (
        200,
        303,
    )
    async with asyncio.timeout(20):
        while (await http.get(f"/api/jobs/{job_id}")).json()["phase"] != "ABORTED":  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # the ABORTED event, carrying the URL, was taken in by now
    assert await hooks_of(http, job_id) == []
    assert len(receiver.received[owner]) == 1


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
async def test_an_unsafe_notification_url_creates_no_job(
    webhook_stack, user_api, form: bool
) -> None:
    owner = f"unsafe-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    for url in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2/hook",  # loopback outside the tests' allow-list (127.0.0.1/32)
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://192.168.1.1/",
        "ftp://example.org/hook",
        "http://user:pw@example.org/hook",
        "https://no-such-host.invalid/hook",
        "not a url",
    ]:
        fields = {"workflow": "hello-world", "notification_url": url, "PHASE": "RUN"}
        response = await (
            http.post("/api/jobs", data=fields) if form else http.post("/api/jobs", json=fields)
        )
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == UNSAFE, url
        assert [e["field"] for e in problem["errors"]] == ["notification_url"]
    if not form:
        wrong = await http.post(
            "/api/jobs", json={"workflow": "hello-world", "notification_url": 5}
        )
        assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM
    jobs = (await http.get("/api/jobs")).json()
    assert jobs["total"] == 0 and jobs["jobs"] == []
    assert (await http.get("/api/subscriptions")).json() == {"subscriptions": []}


async def test_another_users_events_never_reach_a_job_hook(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    alice_name, bob_name = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice, bob = user_api(alice_name), user_api(bob_name)
    alice_secret = await hook_secret(alice)
    alice_job = await create_job(alice, notification_url=receiver.url(alice_name))
    await receiver.wait_for(alice_name, 1)
    # Bob never asked for a secret: his first hook makes one he was not shown.
    bob_job = await create_job(bob, notification_url=receiver.url(bob_name))
    [bobs] = await receiver.wait_for(bob_name, 1)
    state = (await bob.get("/api/subscriptions/job-hook-secret")).json()
    assert state["shown"] is False
    with pytest.raises(WebhookVerificationError):
        verified(alice_secret, bobs)
    # An event of Bob's naming Alice's job (a confused or forged publisher) reaches Alice's
    # hook no more than Bob's own job does: only the event owner's hooks are read.
    await publish(webhook_stack, job_event(bob_name, alice_job, Phase.QUEUED, 50, sequence=2))
    await asyncio.sleep(1.5)
    got = [verified(alice_secret, r) for r in receiver.received[alice_name]]
    assert [(p["data"]["owner"], p["data"]["job_id"]) for p in got] == [(alice_name, alice_job)]
    assert [r.event["data"]["job_id"] for r in receiver.received[bob_name]] == [bob_job]
    # Neither sees the other's hook.
    [alices_hook] = await hooks_of(alice, alice_job)
    assert await hooks_of(bob, alice_job) == []
    assert (await bob.get(f"/api/subscriptions/{alices_hook['id']}")).status_code == 404
    bob_hooks = (await bob.get("/api/subscriptions")).json()["subscriptions"]
    assert [h["job_ids"] for h in bob_hooks] == [[bob_job]]
    # Rotating gives Bob a secret he knows; it is his alone.
    assert (await hook_secret(bob)) != alice_secret


async def test_a_hook_made_by_a_later_event_gets_the_earlier_ones_first(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    """Two gateway relays may publish a job's events in any order: whichever comes first
    makes the hook, and the job's order still holds (its first event published last)."""
    owner = f"late-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    secret = await hook_secret(http)
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    url = receiver.url(owner)
    events = [
        job_event(owner, job_id, phase, 2 + n, sequence=1 + n, notification_url=url)
        for n, phase in enumerate((Phase.PENDING, Phase.QUEUED, Phase.EXECUTING))
    ]
    await publish(webhook_stack, events[2], events[1], events[2])
    async with asyncio.timeout(10):
        while not await hooks_of(http, job_id):  # noqa: ASYNC110 - polling the API
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    assert receiver.received[owner] == []  # held back: number 1 has not come
    await publish(webhook_stack, events[0])
    await receiver.wait_for(owner, 3)
    await asyncio.sleep(1.0)
    payloads = [verified(secret, r) for r in receiver.received[owner]]
    assert [p["id"] for p in payloads] == [e.get_id() for e in events]
    assert len(await hooks_of(http, job_id)) == 1


async def test_a_rotated_job_hook_secret_signs_the_retries(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    """An owner who made no secret before their first hook rotates it: the retries of the
    hook's waiting delivery are signed with the new one."""
    owner = f"rotate-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    receiver.plans[owner] = [401]  # the receiver cannot verify: the secret is not its own
    await create_job(http, notification_url=receiver.url(owner))
    async with asyncio.timeout(10):
        while receiver.calls[owner] < 1:  # noqa: ASYNC110 - polling the receiver
            await asyncio.sleep(0.05)
    assert (await http.get("/api/subscriptions/job-hook-secret")).json()["shown"] is False
    secret = await hook_secret(http)
    receiver.plans[owner] = [200]
    [got] = await receiver.wait_for(owner, 1)
    assert verified(secret, got)["data"]["phase"] == "PENDING"

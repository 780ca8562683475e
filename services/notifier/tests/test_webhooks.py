"""Webhook subscriptions and deliveries against a running stack, on SQLite and PostgreSQL.

Events are published on the real broker (synthetic ones where an exact order or owner is
needed, a real job for the end-to-end case); a real HTTP receiver verifies every signature
with the Standard Webhooks reference library.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from receiver import Receiver, verified

from gridgate.broker import Publisher
from gridgate.broker.publisher import cloud_event
from gridgate.contracts import EVENT_SOURCE, JobEvent, Phase, event_type_for, routing_key_for
from gridgate.contracts.events import SEQUENCE_EXTENSION
from gridgate.contracts.subscriptions import SUBSCRIPTION_DISABLED_TYPE
from gridgate.contracts.topology import EVENTS_EXCHANGE

PROBLEM = "application/problem+json"


def job_event(
    owner: str,
    job_id: str,
    phase: Phase,
    version: int,
    ordinal: int = 0,
    *,
    sequence: int | None = None,
    notification_url: str | None = None,
) -> Any:
    """A job event as the gateway publishes it; without ``sequence``, as it did before it
    numbered a job's events (ordered by the window alone); with ``notification_url``, of a
    job created with its own webhook."""
    data = JobEvent(
        job_id=job_id,
        owner=owner,
        vo="cta",
        phase=phase,
        occurred_at=datetime.now(UTC),
        source="test",
        workflow_id="hello-world",
        job_version=version,
        ordinal=ordinal,
        sequence=sequence,
        notification_url=notification_url,
    )
    return cloud_event(
        event_type=event_type_for(phase),
        source=EVENT_SOURCE,
        subject=job_id,
        data=data.model_dump(mode="json"),
        extensions={SEQUENCE_EXTENSION: sequence} if sequence is not None else None,
    )


async def publish(stack: Any, *events: Any) -> None:
    publisher = await Publisher.open(stack.connection)
    try:
        for event in events:
            await publisher.publish_event(routing_key_for("cta", event.get_type()[17:-3]), event)
    finally:
        await publisher.close()


async def subscribe(http: Any, url: str, **filters: Any) -> dict[str, Any]:
    response = await http.post("/api/subscriptions", json={"url": url, **filters})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_subscription_shows_its_secret_once_and_only_to_its_owner(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    alice, bob = user_api("sub-alice"), user_api("sub-bob")
    created = await subscribe(alice, receiver.url("lifecycle"), vos=["cta"])
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True
    shown = (await alice.get(f"/api/subscriptions/{created['id']}")).json()
    assert "secret" not in shown and shown["url"] == receiver.url("lifecycle")
    listed = (await alice.get("/api/subscriptions")).json()["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert all("secret" not in s for s in listed)
    # Bob sees nothing of Alice's: not found, as if it did not exist.
    other = await bob.get(f"/api/subscriptions/{created['id']}")
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM
    assert (await bob.delete(f"/api/subscriptions/{created['id']}")).status_code == 404
    assert (await bob.get("/api/subscriptions")).json() == {"subscriptions": []}
    # The secret is stored sealed, never in clear.
    from sqlalchemy import text

    async with webhook_stack.notifier.engine.connect() as connection:
        sealed = (
            await connection.execute(
                text("SELECT sealed_secret FROM subscriptions WHERE id = :id"),
                {"id": created["id"]},
            )
        ).scalar_one()
    assert created["secret"] not in sealed and created["secret"][6:] not in sealed
    assert (await alice.delete(f"/api/subscriptions/{created['id']}")).status_code == 204
    assert (await alice.get(f"/api/subscriptions/{created['id']}")).status_code == 404


async def test_unsafe_urls_are_refused_at_creation(user_api) -> None:
    alice = user_api("sub-ssrf")
    for url in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2/hook",  # loopback outside the tests' allow-list (127.0.0.1/32)
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "ftp://example.org/hook",
        "http://user:pw@example.org/hook",
        "https://no-such-host.invalid/hook",
    ]:
        response = await alice.post("/api/subscriptions", json={"url": url})
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:gridgate:problem:unsafe-webhook-url", url
    assert (await alice.get("/api/subscriptions")).json() == {"subscriptions": []}


async def test_events_arrive_signed_in_job_order_once_each(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    owner = f"order-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    created = await subscribe(http, receiver.url(owner))
    job = f"job-{uuid.uuid4().hex[:8]}"
    queued = job_event(owner, job, Phase.QUEUED, 2)
    executing = job_event(owner, job, Phase.EXECUTING, 3)
    completed = job_event(owner, job, Phase.COMPLETED, 4, 0)
    staged = job_event(owner, job, Phase.COMPLETED, 4, 1)
    # Published out of order (as two gateway replicas' relays may), and one twice.
    await publish(webhook_stack, executing, completed, queued, staged, executing)
    got = await receiver.wait_for(owner, 4)
    await asyncio.sleep(1.0)  # a duplicate would have arrived by now
    payloads = [verified(created["secret"], r) for r in receiver.received[owner]]
    assert [p["id"] for p in payloads] == [
        queued.get_id(),
        executing.get_id(),
        completed.get_id(),
        staged.get_id(),
    ]
    assert all(p["specversion"] == "1.0" and p["data"]["job_id"] == job for p in payloads)
    assert [r.headers["webhook-id"] for r in got] == [p["id"] for p in payloads]
    assert all(r.headers["content-type"].startswith("application/cloudevents+json") for r in got)
    log = (await http.get(f"/api/subscriptions/{created['id']}/deliveries")).json()["deliveries"]
    assert len(log) == 4
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["last_status_code"] for d in log} == {200}


async def test_another_users_events_never_reach_a_subscription(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    mine, theirs = f"mine-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    http = user_api(mine)
    # Even a filter naming the other user's job gives nothing of theirs.
    other_job = f"job-{uuid.uuid4().hex[:8]}"
    await subscribe(http, receiver.url(mine), job_ids=[other_job, "my-job"])
    await publish(
        webhook_stack,
        job_event(theirs, other_job, Phase.QUEUED, 2),
        job_event(mine, "my-job", Phase.QUEUED, 2),
    )
    got = await receiver.wait_for(mine, 1)
    await asyncio.sleep(1.0)
    assert [r.event["data"]["owner"] for r in got] == [mine]
    assert [r.event["data"]["job_id"] for r in receiver.received[mine]] == ["my-job"]


async def test_failures_are_retried_and_a_later_event_waits(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    owner = f"retry-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    receiver.plans[owner] = [500, "slow", 503, 200]
    created = await subscribe(http, receiver.url(owner))
    job = f"job-{uuid.uuid4().hex[:8]}"
    first, second = (
        job_event(owner, job, Phase.QUEUED, 2),
        job_event(owner, job, Phase.EXECUTING, 3),
    )
    await publish(webhook_stack, first, second)
    got = await receiver.wait_for(owner, 2)
    assert [r.event["id"] for r in got] == [first.get_id(), second.get_id()]
    assert receiver.calls[owner] == 5  # 500, timeout, 503, then the two deliveries
    for received in got:
        verified(created["secret"], received)
    log = {
        d["event_id"]: d
        for d in (await http.get(f"/api/subscriptions/{created['id']}/deliveries")).json()[
            "deliveries"
        ]
    }
    assert log[first.get_id()]["attempts"] == 4
    assert log[first.get_id()]["status"] == "delivered"
    assert log[second.get_id()]["attempts"] == 1


async def test_a_failing_subscription_is_disabled_then_redelivery_works(
    webhook_stack, user_api, receiver: Receiver
) -> None:
    owner = f"dead-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    receiver.plans[owner] = [500]
    created = await subscribe(http, receiver.url(owner))
    # The notifier announces the disabling on the events exchange.
    channel = await webhook_stack.connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="subscription.#")
    event = job_event(owner, f"job-{uuid.uuid4().hex[:8]}", Phase.QUEUED, 2)
    await publish(webhook_stack, event)
    async with asyncio.timeout(20):
        while (await http.get(f"/api/subscriptions/{created['id']}")).json()[  # noqa: ASYNC110
            "enabled"
        ]:
            await asyncio.sleep(0.2)
    shown = (await http.get(f"/api/subscriptions/{created['id']}")).json()
    assert "HTTP 500" in shown["disabled_reason"] and shown["disabled_at"]
    # Published by the notifier's outbox relay after the commit that disabled it: it may
    # come a moment after the disabling is visible (get() does not wait for a message).
    async with asyncio.timeout(20):
        while (message := await queue.get(fail=False)) is None:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.1)
    import orjson

    announced = orjson.loads(message.body)
    assert announced["type"] == SUBSCRIPTION_DISABLED_TYPE
    assert announced["data"]["subscription_id"] == created["id"]
    await channel.close()
    [failed] = (await http.get(f"/api/subscriptions/{created['id']}/deliveries")).json()[
        "deliveries"
    ]
    assert failed["status"] == "failed" and failed["attempts"] >= 2
    assert failed["last_status_code"] == 500 and failed["last_response"].startswith("answer 500")
    assert len(failed["last_response"]) <= 500  # an excerpt, not the 10 kB answer
    # The receiver is fixed; the owner turns the subscription on and asks for the event again.
    receiver.plans[owner] = [200]
    on = await http.patch(f"/api/subscriptions/{created['id']}", json={"enabled": True})
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
    again = await http.post(
        f"/api/subscriptions/{created['id']}/deliveries/{failed['id']}/redeliver"
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"
    [got] = await receiver.wait_for(owner, 1)
    assert verified(created["secret"], got)["id"] == event.get_id()
    # Redelivering a delivered event sends it again, with the same webhook-id.
    await http.post(f"/api/subscriptions/{created['id']}/deliveries/{failed['id']}/redeliver")
    got = await receiver.wait_for(owner, 2)
    assert got[1].headers["webhook-id"] == got[0].headers["webhook-id"] == event.get_id()
    missing = await http.post(f"/api/subscriptions/{created['id']}/deliveries/nope/redeliver")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_a_redirect_is_not_followed(webhook_stack, user_api, receiver: Receiver) -> None:
    owner = f"redirect-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    receiver.plans[owner] = ["redirect"]
    created = await subscribe(http, receiver.url(owner))
    await publish(webhook_stack, job_event(owner, "j", Phase.QUEUED, 2))
    async with asyncio.timeout(20):
        while True:
            log = (await http.get(f"/api/subscriptions/{created['id']}/deliveries")).json()
            if log["deliveries"] and log["deliveries"][0]["attempts"]:
                break
            await asyncio.sleep(0.1)
    assert log["deliveries"][0]["last_status_code"] == 302
    assert log["deliveries"][0]["status"] in ("pending", "failed")


async def test_a_real_job_is_reported_in_order(webhook_stack, user_api, receiver: Receiver) -> None:
    owner = f"real-{uuid.uuid4().hex[:6]}"
    http = user_api(owner)
    created = await subscribe(http, receiver.url(owner), event_types=["org.gridgate.job.*"])
    response = await http.post("/api/jobs", json={"workflow": "hello-world"})
    assert response.status_code == 303, response.text
    job_url = response.headers["location"]
    assert (await http.post(f"{job_url}/phase", data={"PHASE": "RUN"})).status_code in (200, 303)
    async with asyncio.timeout(60):
        while True:
            phases = [
                verified(created["secret"], r)["data"]["phase"] for r in receiver.received[owner]
            ]
            if "COMPLETED" in phases or "ERROR" in phases:
                break
            await asyncio.sleep(0.2)
    keys = [
        (r.event["data"]["job_version"], r.event["data"]["ordinal"])
        for r in receiver.received[owner]
    ]
    assert keys == sorted(keys)
    # The gateway numbers the job's events without a gap; the subscription got them in order.
    numbers = [r.event["data"]["sequence"] for r in receiver.received[owner]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [r.event["jobsequence"] for r in receiver.received[owner]] == numbers
    assert phases[0] in ("PENDING", "QUEUED") and "EXECUTING" in phases


async def test_bad_bodies_and_anonymous_calls_are_problems(webhook_stack, user_api) -> None:
    http = user_api("sub-bad")
    for body in ({}, {"url": "https://example.org", "colour": "red"}, {"url": 3}):
        response = await http.post("/api/subscriptions", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM
    refused = await http.patch("/api/subscriptions/nope", json={"enabled": True})
    assert refused.status_code == 404 and refused.headers["content-type"] == PROBLEM
    import httpx

    async with httpx.AsyncClient(base_url=webhook_stack.url) as anonymous:
        response = await anonymous.get("/api/subscriptions")
    assert response.status_code == 401 and response.headers["content-type"] == PROBLEM

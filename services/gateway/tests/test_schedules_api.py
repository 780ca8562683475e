"""/api/schedules against a running stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import aio_pika

from gridgate.contracts import EVENTS_EXCHANGE

PROBLEM = "application/problem+json"
NIGHTLY = {"kind": "cron", "expression": "30 2 * * *", "timezone": "Europe/Paris"}


async def create(http, **fields) -> dict:
    body = {"workflow": "hello-world", "trigger": NIGHTLY, **fields}
    response = await http.post("/api/schedules", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == response.json()["url"]
    return response.json()


async def test_create_read_preview_list_change_and_delete(api) -> None:
    http = api("sched-owner")
    made = await create(http, name="nightly", parameters={"name": "night {nominal_time}"})
    assert made["paused"] is False
    assert made["workflow"] == {"id": "hello-world", "version": "1.0.0"}
    assert made["trigger"] == NIGHTLY
    assert made["overlap"] == "forbid"
    assert made["misfire"]["policy"] == "skip"

    got = (await http.get(made["url"], params={"preview": 3})).json()
    assert len(got["preview"]) == 3
    assert got["preview"][0] == got["nextFireTime"]
    assert all(t.endswith(("00:30:00Z", "01:30:00Z")) for t in got["preview"])  # 02:30 Paris

    await create(http, trigger={"kind": "interval", "hours": 6})
    await create(http, trigger={"kind": "interval", "minutes": 30}, paused=True)
    everything = (await http.get("/api/schedules")).json()
    assert everything["total"] == 3
    paused = (await http.get("/api/schedules", params={"paused": "true"})).json()
    assert paused["total"] == 1
    page = (await http.get("/api/schedules", params={"limit": 2})).json()
    assert len(page["schedules"]) == 2 and page["next"]
    rest = (await http.get(page["next"])).json()
    seen = [s["scheduleId"] for s in page["schedules"] + rest["schedules"]]
    assert sorted(seen) == sorted(s["scheduleId"] for s in everything["schedules"])

    changed = await http.patch(made["url"], json={"paused": True, "overlap": "replace"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["paused"] is True
    assert changed.json()["overlap"] == "replace"
    assert changed.json()["pausedReason"] == "paused by its owner"
    resumed = (await http.patch(made["url"], json={"paused": False})).json()
    assert resumed["paused"] is False and resumed["nextFireTime"]

    assert (await http.delete(made["url"])).status_code == 204
    assert (await http.get(made["url"])).status_code == 404


async def test_other_users_see_no_schedule(api) -> None:
    owner, other = api("sched-a"), api("sched-b")
    made = await create(owner)
    url = made["url"]
    for response in [
        await other.get(url),
        await other.patch(url, json={"paused": True}),
        await other.delete(url),
        await other.get(f"{url}/runs"),
        await other.post(f"{url}/run"),
    ]:
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:gridgate:problem:schedule-not-found"
    assert (await other.get("/api/schedules")).json()["total"] == 0
    assert (await owner.get(url)).status_code == 200


async def test_invalid_schedules_are_refused_with_problems(api) -> None:
    http = api("sched-invalid")
    cases = [
        ({"parameters": {"name": "{nominal_time} {whoami}"}}, 422, "unknown-placeholder"),
        ({"parameters": {"name": "{nominal_time.__class__}"}}, 422, "unknown-placeholder"),
        ({"trigger": {"kind": "cron", "expression": "61 * * * *"}}, 422, "invalid-schedule"),
        ({"trigger": {"kind": "cron", "expression": "* * * * *"}}, 422, "invalid-schedule"),
        ({"trigger": {**NIGHTLY, "timezone": "Mars/Olympus"}}, 422, "invalid-schedule"),
        ({"trigger": {"kind": "interval", "minutes": 1}}, 422, "invalid-schedule"),
        ({"trigger": {"kind": "interval", "minutes": 5, "hours": 1}}, 422, "invalid-request"),
        ({"misfire": {"policy": "catch-up", "max": 1000}}, 422, "invalid-schedule"),
        (
            {"start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"},
            422,
            "invalid-schedule",
        ),
        ({"parameters": {"repeat": "many"}}, 422, None),
        ({"facility": "nowhere"}, 422, "unknown-facility"),
        ({"vo": "not-mine"}, 403, "no-virtual-organisation"),
        ({"surprise": 1}, 422, "invalid-request"),
    ]
    for fields, status, slug in cases:
        body = {"workflow": "hello-world", "trigger": NIGHTLY, **fields}
        response = await http.post("/api/schedules", json=body)
        assert response.status_code == status, (fields, response.text)
        assert response.headers["content-type"] == PROBLEM
        if slug is not None:
            assert response.json()["type"] == f"urn:gridgate:problem:{slug}", fields
    assert (await http.get("/api/schedules")).json()["total"] == 0


async def test_run_now_with_a_long_job_and_the_overlap_policies(api) -> None:
    http = api("sched-overlap")
    made = await create(http, parameters={"name": "long", "sleep_s": 60})
    first = await http.post(f"{made['url']}/run")
    assert first.status_code == 201, first.text
    firing = first.json()
    assert firing["outcome"] == "created"
    job = (await http.get(firing["job"])).json()
    assert job["runId"] == f"schedule:{made['scheduleId']}@{firing['nominalTime']}".replace(
        "Z", "+00:00"
    )
    assert job["jobInfo"]["schedule"] == {
        "id": made["scheduleId"],
        "nominalTime": firing["nominalTime"],
    }
    assert job["phase"] in ("QUEUED", "EXECUTING")

    # forbid: the long job still runs, so this firing is skipped, and says why.
    skipped = (await http.post(f"{made['url']}/run")).json()
    assert skipped["outcome"] == "skipped"
    assert "overlap policy forbid" in skipped["reason"]

    # replace: the long job is aborted and a new one made.
    await http.patch(made["url"], json={"overlap": "replace"})
    replaced = (await http.post(f"{made['url']}/run")).json()
    assert replaced["outcome"] == "created"
    for _ in range(50):
        if (await http.get(firing["job"])).json()["phase"] == "ABORTED":
            break
        await asyncio.sleep(0.1)
    assert (await http.get(firing["job"])).json()["phase"] == "ABORTED"

    runs = (await http.get(f"{made['url']}/runs")).json()["runs"]
    assert [r["outcome"] for r in runs] == ["created", "skipped", "created"]
    assert all(r["trigger"] == "manual" for r in runs)
    assert runs[0]["jobId"] == replaced["jobId"]
    await http.post(f"{replaced['job']}/phase", data={"PHASE": "ABORT"})


async def test_firings_and_pauses_are_cloudevents_on_the_topic_exchange(api, stack) -> None:
    connection = await aio_pika.connect(stack.broker_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="schedule.cta.#")
    received: list[tuple[str, dict]] = []

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append((message.routing_key or "", json.loads(message.body)))

    await queue.consume(collect, no_ack=True)
    http = api("sched-events")
    made = await create(http, parameters={"name": "events", "sleep_s": 60})
    fired = (await http.post(f"{made['url']}/run")).json()
    await http.post(f"{made['url']}/run")  # skipped: overlap forbid
    await http.patch(made["url"], json={"paused": True})
    for _ in range(50):
        if len([k for k, b in received if b["data"]["schedule_id"] == made["scheduleId"]]) >= 3:
            break
        await asyncio.sleep(0.1)
    await connection.close()
    await http.post(f"{fired['job']}/phase", data={"PHASE": "ABORT"})

    mine = [(k, b) for k, b in received if b["data"]["schedule_id"] == made["scheduleId"]]
    assert [k for k, _ in mine] == [
        "schedule.cta.fired",
        "schedule.cta.skipped",
        "schedule.cta.paused",
    ]
    fired_event = mine[0][1]
    assert fired_event["specversion"] == "1.0"
    assert fired_event["type"] == "org.gridgate.schedule.fired.v1"
    assert fired_event["subject"] == f"schedules/{made['scheduleId']}"
    assert fired_event["data"]["job_id"] == fired["jobId"]
    assert "overlap policy forbid" in mine[1][1]["data"]["reason"]
    assert mine[2][1]["data"]["reason"] == "paused by its owner"

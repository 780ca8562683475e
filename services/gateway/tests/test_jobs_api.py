"""The UWS job resources against a running stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta

from pyvo.io.uws import parse_job, parse_job_list

PROBLEM = "application/problem+json"


async def create(http, **fields) -> str:
    response = await http.post("/api/jobs", data={"workflow": "hello-world", **fields})
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def test_create_json_body_gives_a_pending_job_with_its_parameters(api) -> None:
    http = api("api-json")
    response = await http.post(
        "/api/jobs",
        json={
            "workflow": "hello-world",
            "RUNID": "my-run",
            "parameters": {"name": "json", "repeat": 2},
        },
    )
    assert response.status_code == 303
    job = (await http.get(response.headers["location"])).json()
    assert job["phase"] == "PENDING"
    assert job["runId"] == "my-run"
    assert job["ownerId"] == "api-json"
    assert job["parameters"] == {"name": "json", "repeat": "2", "sleep_s": "0", "exit_code": "0"}
    assert job["jobInfo"]["workflow"] == {"id": "hello-world", "version": "1.0.0"}
    assert job["executionDuration"] > 0
    assert (await http.get(f"{response.headers['location']}/owner")).text == "api-json"


async def test_uws_xml_is_read_by_pyvo(api) -> None:
    http = api("api-xml")
    url = await create(http, name="xml <&> test", RUNID="r1")
    job_xml = await http.get(url, headers={"Accept": "application/xml"})
    assert job_xml.headers["content-type"].startswith("application/xml")
    job = parse_job(io.BytesIO(job_xml.content))
    assert job.jobid == url.rsplit("/", 1)[1]
    assert job.phase == "PENDING"
    assert job.ownerid == "api-xml"
    assert job.runid == "r1"
    params = {p.id_: p.content for p in job.parameters}
    assert params["name"] == "xml <&> test"

    listing = await http.get("/api/jobs", params={"format": "xml"})
    refs = parse_job_list(io.BytesIO(listing.content))
    assert [r.jobid for r in refs] == [job.jobid]
    assert refs[0].phase == "PENDING"


async def test_list_filters_pages_and_counts(api) -> None:
    http = api("api-list")
    urls = [await create(http, name=str(i)) for i in range(5)]
    await http.post(f"{urls[0]}/phase", data={"PHASE": "ABORT"})
    ids = [u.rsplit("/", 1)[1] for u in urls]

    everything = (await http.get("/api/jobs")).json()
    assert everything["total"] == 5
    assert [j["jobId"] for j in everything["jobs"]] == ids[::-1]

    pending = (await http.get("/api/jobs", params=[("PHASE", "PENDING")])).json()
    assert pending["total"] == 4
    both = (await http.get("/api/jobs", params=[("PHASE", "PENDING"), ("PHASE", "ABORTED")])).json()
    assert both["total"] == 5

    last = (await http.get("/api/jobs", params={"LAST": 2})).json()
    assert [j["jobId"] for j in last["jobs"]] == ids[:-3:-1]

    page1 = await http.get("/api/jobs", params={"limit": 2})
    body1 = page1.json()
    assert len(body1["jobs"]) == 2 and body1["total"] == 5 and body1["next"]
    assert page1.headers["x-total-count"] == "5"
    body2 = (await http.get(body1["next"])).json()
    body3 = (await http.get(body2["next"])).json()
    paged = [j["jobId"] for b in (body1, body2, body3) for j in b["jobs"]]
    assert paged == ids[::-1]
    assert body3["next"] is None

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await http.get("/api/jobs", params={"AFTER": future})).json()["total"] == 0


async def test_wait_returns_when_the_phase_changes(api) -> None:
    http = api("api-wait")
    url = await create(http, sleep_s="1")
    started = time.monotonic()
    waiter = asyncio.create_task(http.get(url, params={"WAIT": 30}))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await http.post(f"{url}/phase", data={"PHASE": "RUN"})
    job = (await waiter).json()
    assert job["phase"] in {"QUEUED", "EXECUTING"}
    assert time.monotonic() - started < 10


async def test_wait_on_a_final_job_returns_at_once(api) -> None:
    http = api("api-wait-final")
    url = await create(http)
    await http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    started = time.monotonic()
    job = (await http.get(url, params={"WAIT": 30})).json()
    assert job["phase"] == "ABORTED"
    assert time.monotonic() - started < 2


async def test_phase_machine_refuses_illegal_changes(api) -> None:
    http = api("api-phase")
    url = await create(http)
    await http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    refused = await http.post(f"{url}/phase", data={"PHASE": "RUN"})
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "urn:gridgate:problem:invalid-phase-change"
    bogus = await http.post(f"{url}/phase", data={"PHASE": "SUSPEND"})
    assert bogus.status_code == 422
    history = (await http.get(url)).json()["jobInfo"]["history"]
    assert [h["to"] for h in history if h["to"]] == ["PENDING", "ABORTED"]


async def test_execution_duration_and_destruction_change_while_pending(api) -> None:
    http = api("api-fields")
    url = await create(http)
    assert (
        await http.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "120"})
    ).status_code == 303
    assert (await http.get(f"{url}/executionduration")).text == "120"
    day = (datetime.now(UTC) + timedelta(days=100)).date().isoformat()
    when = f"{day}T00:00:00Z"
    assert (await http.post(f"{url}/destruction", data={"DESTRUCTION": when})).status_code == 303
    assert (await http.get(f"{url}/destruction")).text.startswith(f"{day}T00:00:00")
    too_late = await http.post(f"{url}/destruction", data={"DESTRUCTION": "2999-01-01T00:00:00Z"})
    assert too_late.status_code == 422
    assert too_late.json()["type"] == "urn:gridgate:problem:invalid-job-field"
    too_long = await http.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "999999"})
    assert too_long.status_code == 422
    assert too_long.json()["type"] == "urn:gridgate:problem:facility-cannot-run-workflow"
    assert (await http.get(f"{url}/quote")).text == ""
    params = (await http.get(f"{url}/parameters")).json()
    assert params["name"] == "world"
    no_error = await http.get(f"{url}/error")
    assert no_error.status_code == 404


async def test_delete_and_action_delete(api) -> None:
    http = api("api-delete")
    first = await create(http)
    second = await create(http)
    deleted = await http.delete(first)
    assert deleted.status_code == 303
    assert deleted.headers["location"].endswith("/api/jobs")
    assert (await http.get(first)).status_code == 404
    posted = await http.post(second, data={"ACTION": "DELETE"})
    assert posted.status_code == 303
    assert (await http.get(second)).status_code == 404
    assert (await http.get("/api/jobs")).json()["total"] == 0


async def test_another_users_job_is_not_found(api) -> None:
    owner = api("api-owner")
    intruder = api("api-intruder")
    url = await create(owner)
    for response in (
        await intruder.get(url),
        await intruder.post(f"{url}/phase", data={"PHASE": "ABORT"}),
        await intruder.delete(url),
        await intruder.get(f"{url}/parameters"),
    ):
        assert response.status_code == 404
        assert response.json()["type"] == "urn:gridgate:problem:job-not-found"
    assert (await intruder.get("/api/jobs")).json()["total"] == 0
    assert (await owner.get(url)).json()["phase"] == "PENDING"


async def test_unknown_workflow_and_bad_parameters_are_problems(api) -> None:
    http = api("api-bad")
    unknown = await http.post("/api/jobs", data={"workflow": "no-such-thing"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    assert unknown.json()["type"] == "urn:gridgate:problem:unknown-workflow"

    bad = await http.post(
        "/api/jobs",
        data={
            "workflow": "cta-mc-production",
            "number_of_jobs": "0",
            "he_interaction_model": "GEANT",
            "colour": "blue",
        },
    )
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["type"] == "urn:gridgate:problem:invalid-parameters"
    fields = {e["field"] for e in problem["errors"]}
    assert {"number_of_jobs", "he_interaction_model", "colour"} <= fields

    missing = await http.post("/api/jobs", data={"name": "x"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "workflow"
    assert (await http.get("/api/jobs")).json()["total"] == 0


async def test_tokens_are_required_and_checked(api, stack, token_for) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=stack.url) as anonymous:
        missing = await anonymous.get("/api/jobs")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == PROBLEM
        assert missing.headers["www-authenticate"].startswith("Bearer")
        garbage = await anonymous.get("/api/jobs", headers={"Authorization": "Bearer abc.def"})
        assert garbage.status_code == 401
        token = token_for("api-token")
        head, payload, signature = token.split(".")
        tampered = ".".join(
            [head, payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1], signature]
        )
        refused = await anonymous.get("/api/jobs", headers={"Authorization": f"Bearer {tampered}"})
        assert refused.status_code == 401
        expired = token_for("api-token", lifetime_s=-3600)
        assert (
            await anonymous.get("/api/jobs", headers={"Authorization": f"Bearer {expired}"})
        ).status_code == 401
        basic = await anonymous.get("/api/jobs", headers={"Authorization": "Basic dXNlcjpw"})
        assert basic.status_code == 401
        assert (
            await anonymous.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200


async def test_user_without_a_group_cannot_submit(api) -> None:
    http = api("api-nogroup", groups=())
    refused = await http.post("/api/jobs", data={"workflow": "hello-world"})
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:gridgate:problem:no-virtual-organisation"


async def test_oversized_body_is_refused(api) -> None:
    http = api("api-big")
    big = await http.post("/api/jobs", data={"workflow": "hello-world", "name": "x" * 2_000_000})
    assert big.status_code == 413
    assert big.headers["content-type"] == PROBLEM
    assert big.json()["type"] == "urn:gridgate:problem:body-too-large"
    assert (await http.get("/api/jobs")).json()["total"] == 0


async def test_unsupported_body_is_a_problem(api) -> None:
    http = api("api-ctype")
    response = await http.post(
        "/api/jobs", content=b"<job/>", headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    broken = await http.post(
        "/api/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422

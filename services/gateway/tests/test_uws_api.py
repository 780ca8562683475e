"""UWS 1.1 as stock clients use it, against a running stack: the XML-first /uws/jobs,
valid XML in every phase, inputs that cannot break a job later, WAIT, POST /parameters, and
the HTTP semantics every resource shares."""

from __future__ import annotations

import asyncio
import time

from .uws_schema import assert_valid_uws

PROBLEM = "urn:gridgate:problem:"
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XML = {"Accept": "application/xml"}
JSON = {"Accept": "application/json"}


async def create(http, root: str = "/uws/jobs", **fields) -> str:
    response = await http.post(root, data={"workflow": "hello-world", **fields})
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def phase_of(http, url: str) -> str:
    return (await http.get(f"{url}/phase")).text


async def until(http, url: str, phases: set[str]) -> str:
    for _ in range(120):
        phase = await phase_of(http, url)
        if phase in phases:
            return phase
        await asyncio.sleep(0.25)
    raise AssertionError(f"{url} never reached {phases}; it is {phase}")


async def assert_documents_valid(http, url: str, root: str = "/uws/jobs") -> None:
    # No Accept at all: what a stock client sends.
    for path in (url, f"{url}/results", f"{url}/parameters", root):
        response = await http.get(path, headers={"Accept": ""})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("application/xml"), path
        assert_valid_uws(response.content)


async def test_uws_root_is_xml_first_and_api_root_json_first(api) -> None:
    http = api("uws-negotiation")
    url = await create(http, RUNID="r1")
    assert "/uws/jobs/" in url
    for accept in ("", "*/*", "application/xml", "text/xml", "application/json;q=0.5, */*"):
        response = await http.get(url, headers={"Accept": accept})
        assert response.headers["content-type"].startswith("application/xml"), accept
        assert response.headers["vary"] == "Accept"
    assert (await http.get(url, headers=JSON)).json()["runId"] == "r1"
    assert (await http.get(url, params={"format": "json"})).json()["phase"] == "PENDING"
    api_url = url.replace("/uws/jobs/", "/api/jobs/")
    assert (await http.get(api_url, headers={"Accept": ""})).json()["runId"] == "r1"
    assert (await http.get(api_url, headers={"Accept": "*/*"})).json()["runId"] == "r1"
    as_xml = await http.get(api_url, params={"format": "xml"})
    assert_valid_uws(as_xml.content)
    root = assert_valid_uws((await http.get(url)).content)
    # The links of the XML-first root stay in it.
    listing = assert_valid_uws((await http.get("/uws/jobs")).content)
    assert listing[0].get("{http://www.w3.org/1999/xlink}href") == url
    assert root.find(UWS + "jobId").text == url.rsplit("/", 1)[1]


async def test_xml_is_valid_in_every_phase(api) -> None:
    http = api("uws-phases")
    pending = await create(http)
    await assert_documents_valid(http, pending)

    running = await create(http, sleep_s="30", PHASE="RUN")
    assert await until(http, running, {"QUEUED", "EXECUTING"}) in {"QUEUED", "EXECUTING"}
    await assert_documents_valid(http, running)
    await until(http, running, {"EXECUTING"})
    await assert_documents_valid(http, running)
    assert (await http.post(f"{running}/phase", data={"PHASE": "ABORT"})).status_code == 303
    await until(http, running, {"ABORTED"})
    await assert_documents_valid(http, running)

    completed = await create(http, PHASE="RUN")
    failed = await create(http, exit_code="3", PHASE="RUN")
    assert await until(http, completed, {"COMPLETED", "ERROR"}) == "COMPLETED"
    assert await until(http, failed, {"COMPLETED", "ERROR"}) == "ERROR"
    for url in (completed, failed):
        await assert_documents_valid(http, url)
    done = assert_valid_uws((await http.get(completed)).content)
    assert len(done.find(UWS + "results")) >= 1


async def test_values_that_would_break_a_job_later_are_refused(api) -> None:
    http = api("uws-inputs")
    cases = [
        ({"executionduration": "-1", "PHASE": "RUN"}, "invalid-job-field"),
        ({"RUNID": "x" * 256}, "invalid-job-field"),
        ({"RUNID": "a\x01b"}, "unrepresentable-characters"),
        ({"RUNID": "a\x1bb"}, "unrepresentable-characters"),
        ({"name": "a\ufffeb"}, "unrepresentable-characters"),
        ({"name": "n" * 5000}, "invalid-job-field"),
        ({"destruction": "2000-01-01T00:00:00Z"}, "invalid-job-field"),
        ({"destruction": "2999-01-01T00:00:00Z"}, "invalid-job-field"),
    ]
    for fields, slug in cases:
        response = await http.post("/api/jobs", data={"workflow": "hello-world", **fields})
        assert response.status_code == 422, (fields, response.text)
        assert response.json()["type"] == PROBLEM + slug, fields
        assert len(response.content) < 2000
    url = await create(http)
    negative = await http.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "-1"})
    assert negative.status_code == 422
    huge = await http.post("/api/jobs", data={"workflow": "hello-world", "RUNID": "r" * 900_000})
    assert huge.status_code == 422 and len(huge.content) < 2000
    many = {f"p{i}": "v" * 200 for i in range(4000)}
    flood = await http.post("/api/jobs", json={"workflow": "hello-world", "parameters": many})
    assert flood.status_code == 422
    assert len(flood.content) < 20_000, len(flood.content)
    # Nothing above reached the owner's job list.
    assert_valid_uws((await http.get("/uws/jobs")).content)


async def test_wait_answers_at_once_outside_active_phases(api) -> None:
    http = api("uws-wait")
    url = await create(http, PHASE="RUN")
    assert await until(http, url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    for params in ({"WAIT": 5, "PHASE": "COMPLETED"}, {"WAIT": -1}, {"WAIT": 5, "PHASE": "QUEUED"}):
        started = time.monotonic()
        response = await http.get(url, params=params, headers=JSON)
        assert response.status_code == 200
        assert time.monotonic() - started < 2, params
    pending = await create(http)
    started = time.monotonic()
    # PHASE names a phase the job is not in: no blocking either.
    await http.get(pending, params={"WAIT": 5, "PHASE": "EXECUTING"})
    assert time.monotonic() - started < 2


async def test_too_many_blocked_waits_answer_429(api) -> None:
    http = api("uws-wait-cap")
    url = await create(http)
    # 21 blocking requests; 20 may block at once, so one is told to come back later.
    waits = [asyncio.create_task(http.get(url, params={"WAIT": 30})) for _ in range(21)]
    for _ in range(100):
        if any(w.done() for w in waits):
            break
        await asyncio.sleep(0.1)
    await http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    answers = await asyncio.gather(*waits)
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 1, [a.status_code for a in answers]
    assert refused[0].headers["retry-after"].isdigit()
    assert refused[0].json()["type"] == PROBLEM + "too-many-waits"
    assert sum(a.status_code == 200 for a in answers) == 20


async def test_parameters_change_while_pending(api) -> None:
    http = api("uws-parameters")
    url = await create(http, name="before")
    changed = await http.post(f"{url}/parameters", data={"name": "after", "repeat": "3"})
    assert changed.status_code == 303
    params = (await http.get(f"{url}/parameters", headers=JSON)).json()
    assert params["name"] == "after" and params["repeat"] == "3"
    as_json = await http.post(f"{url}/parameters", json={"sleep_s": 1})
    assert as_json.status_code == 303
    bad = await http.post(f"{url}/parameters", data={"repeat": "0"})
    assert bad.status_code == 422 and bad.json()["type"] == PROBLEM + "invalid-parameters"
    unknown = await http.post(f"{url}/parameters", data={"nope": "1"})
    assert unknown.status_code == 422
    control = await http.post(f"{url}/parameters", data={"name": "\x07"})
    assert control.json()["type"] == PROBLEM + "unrepresentable-characters"
    await http.post(f"{url}/phase", data={"PHASE": "RUN"})
    late = await http.post(f"{url}/parameters", data={"name": "late"})
    assert late.status_code == 409 and late.json()["type"] == PROBLEM + "job-not-pending"


async def test_file_parts_are_refused_not_dropped(api) -> None:
    http = api("uws-files")
    response = await http.post(
        "/uws/jobs",
        data={"workflow": "hello-world"},
        files={"name": ("name.txt", b"from a file", "text/plain")},
    )
    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "file-parameters-unsupported"
    assert (await http.get("/api/jobs")).json()["total"] == 0


async def test_http_semantics(api) -> None:
    http = api("uws-http")
    url = await create(http)
    got = await http.get(url)
    assert got.headers["cache-control"] == "no-store"
    etag = got.headers["etag"]
    head = await http.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag
    assert head.headers["content-length"] == got.headers["content-length"]
    assert (await http.head(f"{url}/phase")).status_code == 200
    assert (await http.head("/api/workflows")).status_code == 200
    unchanged = await http.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert (await http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    assert (await http.get(url, headers=JSON)).headers["etag"] != etag
    wrong = await http.put(url)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "DELETE, GET, HEAD, POST"
    phase = await http.delete(f"{url}/phase")
    assert phase.headers["allow"] == "GET, HEAD, POST"
    listing = await http.patch("/api/jobs")
    assert listing.headers["allow"] == "GET, HEAD, POST"
    # No CORS unless origins are configured.
    preflight = await http.options(
        "/api/jobs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_result_downloads_are_private(api) -> None:
    http = api("uws-download")
    url = await create(http, PHASE="RUN")
    assert await until(http, url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    download = await http.get(f"{url}/results/hello.txt")
    assert download.status_code == 200
    assert download.headers["cache-control"] == "private"

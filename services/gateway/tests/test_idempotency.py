"""Idempotency-Key on POST /api/jobs: one job per (user, key, request), on both databases."""

from __future__ import annotations

import asyncio

PROBLEM = "application/problem+json"


async def post(http, key: str | None, **fields: str):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await http.post("/api/jobs", data={"workflow": "hello-world", **fields}, headers=headers)


async def test_a_repeated_request_answers_with_the_same_job(api) -> None:
    http = api("idem-alice")
    first = await post(http, "order-1", name="hi")
    again = await post(http, "order-1", name="hi")
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    listed = (await http.get("/api/jobs")).json()
    assert listed["total"] == 1


async def test_concurrent_twins_create_one_job(api) -> None:
    http = api("idem-bob")
    answers = await asyncio.gather(*(post(http, "burst", name="x") for _ in range(8)))
    assert {a.status_code for a in answers} == {303}
    assert len({a.headers["location"] for a in answers}) == 1
    assert (await http.get("/api/jobs")).json()["total"] == 1


async def test_the_key_with_another_request_is_refused(api) -> None:
    http = api("idem-carol")
    assert (await post(http, "k", name="one")).status_code == 303
    refused = await post(http, "k", name="two")
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["type"] == "urn:gridgate:problem:idempotency-key-reused"
    assert (await http.get("/api/jobs")).json()["total"] == 1


async def test_keys_are_per_user_and_optional(api) -> None:
    dave, erin = api("idem-dave"), api("idem-erin")
    mine = await post(dave, "shared-key", name="m")
    theirs = await post(erin, "shared-key", name="m")
    assert mine.headers["location"] != theirs.headers["location"]
    plain = [await post(dave, None, name="m") for _ in range(2)]
    assert plain[0].headers["location"] != plain[1].headers["location"]


async def test_a_malformed_key_is_a_clear_error(api) -> None:
    http = api("idem-frank")
    for bad in ("", "x" * 256, "tab\there"):
        refused = await post(http, bad, name="m")
        assert refused.status_code == 422, bad
        assert refused.json()["type"] == "urn:gridgate:problem:invalid-idempotency-key"
    assert (await http.get("/api/jobs")).json()["total"] == 0

"""VOSI availability and capabilities, read with pyvo's own VOSI parsers."""

from __future__ import annotations

import io

import httpx
from pyvo.io import vosi

UWS = "ivo://ivoa.net/std/UWS#rest-1.1"


async def test_availability_is_public_and_says_available(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        answer = await anonymous.get("/availability")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    parsed = vosi.parse_availability(io.BytesIO(answer.content))
    assert parsed.available is True
    assert parsed.upsince is not None


async def test_capabilities_name_the_uws_job_list_and_vosi(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as anonymous:
        answer = await anonymous.get("/capabilities")
    assert answer.status_code == 200
    capabilities = vosi.parse_capabilities(io.BytesIO(answer.content))
    by_standard = {c.standardid: c for c in capabilities}
    assert set(by_standard) == {
        "ivo://ivoa.net/std/VOSI#capabilities",
        "ivo://ivoa.net/std/VOSI#availability",
        UWS,
    }
    jobs = by_standard[UWS].interfaces[0]
    assert jobs.accessurls[0].content == f"{stack.url}/api/jobs"
    assert jobs.securitymethods[0].standardid == "ivo://ivoa.net/sso#OAuth"

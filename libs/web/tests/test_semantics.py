"""HEAD, Allow, Cache-Control and CORS on a small application of the shared middleware."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from gridgate.web import install_problem_handlers
from gridgate.web.semantics import install_http_semantics

PORTAL = "https://portal.example.org"


def app(origins: list[str]) -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.get("/things/{name}")
    async def get_thing(name: str) -> dict[str, str]:
        return {"name": name}

    @application.delete("/things/{name}")
    async def delete_thing(name: str) -> dict[str, str]:
        return {"deleted": name}

    @application.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            yield b"a" * 10
            yield b"b" * 10

        return StreamingResponse(chunks(), media_type="text/plain")

    install_http_semantics(application, origins)
    return application


def client(origins: list[str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app(origins)), base_url="http://t")


async def test_head_allow_and_cache_control() -> None:
    async with client([]) as http:
        head = await http.head("/things/x", headers={"Authorization": "Bearer t"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(b'{"name":"x"}'))
        assert head.headers["cache-control"] == "no-store"
        assert (await http.head("/stream")).content == b""
        assert "cache-control" not in (await http.get("/things/x")).headers
        refused = await http.post("/things/x")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "DELETE, GET, HEAD"


async def test_cors_only_for_configured_origins() -> None:
    preflight = {"Origin": PORTAL, "Access-Control-Request-Method": "DELETE"}
    async with client([]) as http:
        answer = await http.options("/things/x", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    async with client([PORTAL]) as http:
        answer = await http.options(
            "/things/x", headers=preflight | {"Access-Control-Request-Headers": "Authorization"}
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == PORTAL
        simple = await http.get("/things/x", headers={"Origin": PORTAL})
        assert simple.headers["access-control-allow-origin"] == PORTAL
        assert "ETag" in simple.headers["access-control-expose-headers"]
        other = await http.get("/things/x", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers

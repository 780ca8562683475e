"""A webhook receiver for the tests: a real HTTP server that records and answers as told."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from gridgate.testing.services import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """``/hook/<name>`` answers with the plan for ``name``: a list of status codes (the last
        one repeats), ``"slow"`` (answers after 3 s), ``"slow-ok"`` (takes the event, then answers
    200 after 3 s) or ``"redirect"`` (302 to a private address)."""

    port: int = field(default_factory=free_port)
    plans: dict[str, list[Any]] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    async def _hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        plan = self.plans.get(name, [200])
        step = plan[min(self.calls[name], len(plan) - 1)]
        self.calls[name] += 1
        if step == "slow":
            await asyncio.sleep(3)
            return PlainTextResponse("late")
        if step == "slow-ok":
            self.received[name].append(Received(dict(request.headers), body))
            await asyncio.sleep(3)
            return PlainTextResponse("taken")
        if step == "redirect":
            return RedirectResponse("http://10.0.0.1/hook", status_code=302)
        if 200 <= int(step) < 300:
            self.received[name].append(Received(dict(request.headers), body))
        return PlainTextResponse(f"answer {step} " + "x" * 10_000, status_code=int(step))

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook/{name}", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off")
        )
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def wait_for(self, name: str, count: int, timeout_s: float = 20.0) -> list[Received]:
        async with asyncio.timeout(timeout_s):
            while len(self.received[name]) < count:  # noqa: ASYNC110 - polling a list
                await asyncio.sleep(0.05)
        return self.received[name]


def verified(secret: str, received: Received) -> dict[str, Any]:
    """The payload, after the reference library verified its signature (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload

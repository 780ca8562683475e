"""A tiny HTTP endpoint for workers: ``/healthz``, ``/readyz`` and ``/metrics``.

Workers have no web framework, and these three answers need none: a minimal HTTP/1.1
responder on asyncio serves them (one request per connection, GET and HEAD only, bounded
request size and read time). Kubernetes probes and Prometheus scrapes are its only clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping

import structlog

from gridgate.observability.metrics import render_latest

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Mapping[str, bool]]
"""Returns named checks, e.g. ``{"broker": True, "consumer": True}``; ready when all hold."""

MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 5.0
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """Serve liveness, readiness and metrics on ``host:port`` while a worker runs.

    Parameters
    ----------
    readiness
        Called on every ``/readyz``; must be cheap and must not block.
    host, port
        Where to listen; port 0 picks a free port (see :attr:`port` after :meth:`start`).
    """

    def __init__(self, readiness: ReadinessCheck, *, host: str = "0.0.0.0", port: int = 0) -> None:  # noqa: S104
        self._readiness = readiness
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when 0 was asked)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        log.info("health endpoint listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        try:
            method, target = self._request_line(head)
            status, body, content_type = self._answer(method, target)
            writer.write(self._response(status, body, content_type, method == "HEAD"))
            await writer.drain()
        except (ValueError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _request_line(head: bytes) -> tuple[str, str]:
        if len(head) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x request line")
        return parts[0], parts[1].split("?", 1)[0]

    def _answer(self, method: str, path: str) -> tuple[int, bytes, str]:
        if path not in {"/healthz", "/readyz", "/metrics"}:
            return 404, b'{"detail":"not found"}', "application/json"
        if method not in {"GET", "HEAD"}:
            return 405, b'{"detail":"method not allowed"}', "application/json"
        if path == "/healthz":
            return 200, b'{"status":"alive"}', "application/json"
        if path == "/metrics":
            payload, content_type = render_latest()
            return 200, payload, content_type
        try:
            checks = {name: bool(ok) for name, ok in self._readiness().items()}
        except Exception as exc:  # a failing check means not ready, never a dead endpoint
            checks = {"readiness-check": False}
            log.warning("readiness check raised", error=type(exc).__name__)
        ready = bool(checks) and all(checks.values())
        body = json.dumps(
            {"ready": ready, "checks": {k: "ok" if v else "down" for k, v in checks.items()}}
        ).encode()
        return (200 if ready else 503), body, "application/json"

    @staticmethod
    def _response(status: int, body: bytes, content_type: str, head_only: bool) -> bytes:
        header = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        return header if head_only else header + body

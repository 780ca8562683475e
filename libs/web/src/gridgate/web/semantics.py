"""HTTP semantics every route shares: HEAD, ``Allow`` on 405, ``Cache-Control``, CORS.

FastAPI routes answer only the methods they declare, and Starlette's 405 names the methods of
the first route whose path matched. This middleware puts right what RFC 9110 asks of every
resource: HEAD wherever GET is (§9.3.2), an ``Allow`` naming every method the resource has
(§15.5.6), and no copy of an authenticated answer kept by a shared cache (RFC 9111 §3.5).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_METHODS = ["GET", "HEAD", "POST", "DELETE"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key"]
CORS_EXPOSED_HEADERS = ["Location", "ETag", "Link", "X-Total-Count", "Retry-After"]


class HttpSemanticsMiddleware:
    """ASGI middleware: HEAD as GET without the body, a full ``Allow``, ``Cache-Control``.

    Parameters
    ----------
    app
        The application to wrap.
    routes
        The application's routes, to find every method a path answers.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        authenticated = "authorization" in Headers(scope=scope)
        original = scope

        async def respond(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                allowed = self.allowed(original) if message["status"] == 405 else []
                if allowed:  # none: a mounted application's own 405, left as it said
                    headers["Allow"] = ", ".join(allowed)
                if authenticated and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            elif message["type"] == "http.response.body" and head:
                # The headers of the GET answer, Content-Length included; never its body.
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if head:
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, respond)

    def allowed(self, scope: Scope) -> list[str]:
        """Every method some route answers at the request's path (HEAD wherever GET is)."""
        # Asked method by method: FastAPI keeps included routers as nested routes, which
        # answer ``matches`` but do not list their methods.
        methods = [
            method
            for method in PROBED_METHODS
            if any(
                route.matches({**scope, "method": method})[0] == Match.FULL for route in self.routes
            )
        ]
        if "GET" in methods:
            methods.append("HEAD")
        return sorted(methods)


def install_http_semantics(app: FastAPI, cors_origins: Sequence[str] = ()) -> None:
    """Add :class:`HttpSemanticsMiddleware`, and CORS for ``cors_origins`` (none: no CORS).

    Parameters
    ----------
    app
        The application; call after its routers are included or before, either works.
    cors_origins
        Origins whose pages may call the API from a browser, e.g. a science portal's.
    """
    app.add_middleware(HttpSemanticsMiddleware, routes=app.router.routes)
    if cors_origins:
        # Outermost, so that a preflight is answered before anything else looks at it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )

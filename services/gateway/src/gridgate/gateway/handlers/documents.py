"""Negotiated job documents: ``Vary: Accept``, an ``ETag``, and 304 to ``If-None-Match``.

A client polling a job (pyvo's ``wait`` does) gets a 304 without a body while nothing
changed. The tag is a digest of the bytes sent, so it differs between the JSON and the XML
of one job, as RFC 9110 §8.8.3 wants of distinct representations.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.responses import Response


def document(
    request: Request, body: bytes, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    """The answer carrying ``body``, or 304 when the client already holds it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    fields = {"ETag": etag, "Vary": "Accept", **(headers or {})}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=fields)
    return Response(body, media_type=media_type, headers=fields)


def json_document(
    request: Request, content: Any, headers: dict[str, str] | None = None
) -> Response:
    """:func:`document` for a JSON value, rendered as FastAPI's ``JSONResponse`` does."""
    return document(request, bytes(JSONResponse(content).body), "application/json", headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    # Weak comparison (RFC 9110 §13.1.2): a W/ prefix does not prevent a match.
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags

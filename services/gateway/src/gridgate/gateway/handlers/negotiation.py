"""Reading UWS requests: format negotiation, case-insensitive parameters, form or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from gridgate.core.errors import InvalidRequestError
from gridgate.gateway.exceptions import FileParametersUnsupportedError, InvalidIdempotencyKeyError
from gridgate.gateway.services.jobs import JobRequest

# Names UWS or gridgate reserve on job creation; everything else is a workflow parameter.
RESERVED = {
    "workflow",
    "version",
    "facility",
    "phase",
    "runid",
    "vo",
    "executionduration",
    "destruction",
    "format",
    "group",
    "inputs",
    "files_per_job",
    "notification_url",
    "notificationurl",
}


API_JOBS = "/api/jobs"
"""The JSON-first job list: JSON unless the client asks for XML (docs/adr/0008)."""
UWS_JOBS = "/uws/jobs"
"""The XML-first job list, for stock UWS clients: XML unless the client asks for JSON."""

_XML_TYPES = ("application/xml", "text/xml")


def operation_id(route: APIRoute) -> str:
    """The OpenAPI ``operationId``: the handler's name (generated clients name functions
    after it), prefixed ``uws_`` under the XML-first list, which serves the same handlers."""
    return ("uws_" if route.path_format.startswith(UWS_JOBS) else "") + route.name


_JSON_TYPES = ("application/json",)


def jobs_root(request: Request) -> str:
    """Which job list the request came through: ``/api/jobs`` or ``/uws/jobs``."""
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return UWS_JOBS if path == UWS_JOBS or path.startswith(UWS_JOBS + "/") else API_JOBS


def wants_xml(request: Request) -> bool:
    """Whether to answer in UWS XML: ``?format=`` first, then ``Accept``, then the root's
    default (XML under ``/uws/jobs``, JSON under ``/api/jobs``)."""
    xml_first = jobs_root(request) == UWS_JOBS
    fmt = request.query_params.get("format") or request.query_params.get("FORMAT")
    if fmt:
        return fmt.lower() in {"xml", *_XML_TYPES}
    xml_q = _quality(request.headers.get("accept"), _XML_TYPES)
    json_q = _quality(request.headers.get("accept"), _JSON_TYPES)
    # A tie (no Accept, */*, or both named alike) goes to the root's default.
    return xml_q > json_q or (xml_q == json_q and xml_first)


def _quality(accept: str | None, types: tuple[str, ...]) -> float:
    """The highest q the ``Accept`` header gives any of ``types`` (RFC 9110 §12.5.1): an
    exact media range beats ``type/*``, which beats ``*/*``. No header accepts anything."""
    if not accept:
        return 1.0
    best: dict[str, tuple[int, float]] = {}
    for item in accept.split(",")[:64]:
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        for wanted in types:
            major = wanted.split("/")[0]
            rank = (
                3 if media == wanted else 2 if media == f"{major}/*" else 1 if media == "*/*" else 0
            )
            if rank and rank > best.get(wanted, (0, 0.0))[0]:
                best[wanted] = (rank, q)
    return max((q for _, q in best.values()), default=0.0)


async def read_fields(request: Request) -> dict[str, Any]:
    """The request's fields from JSON, a form, or the query string, keys lower-cased."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any]
    if content_type == "application/json":
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"The body is not valid JSON: {exc}.") from exc
        if not isinstance(body, dict):
            raise InvalidRequestError("The JSON body must be an object of fields.")
        nested = body.pop("parameters", None)
        fields = dict(body)
        if isinstance(nested, dict):
            fields.update(nested)
    elif content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        form = await request.form()
        files = [key for key, value in form.multi_items() if isinstance(value, UploadFile)]
        if files:
            # Never dropped in silence: the job would run with the default instead.
            raise FileParametersUnsupportedError(
                "Job parameters are values, not uploaded files; name files in the data lake "
                "with inputs=<scope:name> instead.",
                errors=[{"field": key[:200], "message": "file upload"} for key in files[:20]],
            )
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    elif content_type == "":
        fields = {}
    else:
        raise InvalidRequestError(
            f"Unsupported content type {content_type!r}: send a form or JSON.",
        )
    for key, value in request.query_params.multi_items():
        fields.setdefault(key, value)
    lowered: dict[str, Any] = {}
    for key, value in fields.items():
        lowered[key.lower()] = value
    return lowered


def parse_time(value: Any, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(
            f"{field} must be an ISO-8601 time, e.g. 2030-01-01T00:00:00Z.",
            errors=[{"field": field, "message": "not an ISO-8601 time"}],
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_seconds(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise InvalidRequestError(
            f"{field} must be a whole number of seconds.",
            errors=[{"field": field, "message": "not an integer"}],
        ) from exc


def parse_inputs(value: Any) -> tuple[str, ...]:
    """Input DIDs from a JSON list, or a form field of DIDs separated by commas or spaces."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    if not all(isinstance(item, str) for item in items):
        raise InvalidRequestError(
            "inputs is a list of DIDs (scope:name).",
            errors=[{"field": "inputs", "message": "not a list of strings"}],
        )
    return tuple(item.strip() for item in items if item.strip())


IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` (IETF httpapi draft): printable ASCII, bounded."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    # The draft makes the value a structured-field string; a bare token is accepted too.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKeyError(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
            errors=[{"field": IDEMPOTENCY_HEADER, "message": "not a valid key"}],
        )
    return key


def job_request(fields: dict[str, Any], idempotency: str | None = None) -> JobRequest:
    """Split creation fields into UWS/gridgate fields and workflow parameters."""
    workflow = fields.get("workflow")
    if not isinstance(workflow, str) or not workflow:
        raise InvalidRequestError(
            "Name the workflow to run: workflow=<id> (see /api/workflows).",
            errors=[{"field": "workflow", "message": "required"}],
        )
    phase = fields.get("phase")
    if phase is not None and str(phase).upper() != "RUN":
        raise InvalidRequestError(
            "PHASE at creation may only be RUN.",
            errors=[{"field": "PHASE", "message": "only RUN is accepted at creation"}],
        )
    duration = fields.get("executionduration")
    # notification_url, or notificationUrl as the job's JSON names it (names are lower-cased).
    hook = fields.get("notification_url") or fields.get("notificationurl")
    if hook is not None and not isinstance(hook, str):
        raise InvalidRequestError(
            "notification_url is a URL (a string).",
            errors=[{"field": "notification_url", "message": "not a string"}],
        )
    destruction = fields.get("destruction")
    return JobRequest(
        workflow=workflow,
        idempotency_key=idempotency,
        version=str(fields["version"]) if fields.get("version") else None,
        facility=str(fields.get("facility") or "local"),
        run=phase is not None,
        run_id=str(fields["runid"]) if fields.get("runid") else None,
        vo=str(fields["vo"]) if fields.get("vo") else None,
        group=str(fields["group"]) if fields.get("group") else None,
        execution_duration=parse_seconds(duration, "executionduration")
        if duration is not None
        else None,
        destruction=parse_time(destruction, "destruction") if destruction else None,
        parameters={k: v for k, v in fields.items() if k not in RESERVED},
        inputs=parse_inputs(fields.get("inputs")),
        files_per_job=parse_seconds(fields["files_per_job"], "files_per_job")
        if fields.get("files_per_job") not in (None, "")
        else None,
        notification_url=hook or None,
    )

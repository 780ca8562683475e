"""The UWS 1.1 job resources under /api/jobs."""

from __future__ import annotations

import base64
import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    StreamingResponse,
)
from starlette.background import BackgroundTask
from starlette.responses import Response

from gridgate.contracts.phases import Phase
from gridgate.core.errors import InvalidRequestError
from gridgate.gateway.dependencies import NewJobWork, User, Waiter, Work, current_user
from gridgate.gateway.exceptions import ResultNotFoundError
from gridgate.gateway.handlers import bodies
from gridgate.gateway.handlers.documents import document, json_document
from gridgate.gateway.handlers.negotiation import (
    API_JOBS,
    RESERVED,
    UWS_JOBS,
    idempotency_key,
    job_request,
    jobs_root,
    parse_seconds,
    parse_time,
    read_fields,
    wants_xml,
)
from gridgate.gateway.handlers.representations import (
    JobList,
    JobSummary,
    Results,
    error_summary,
    iso,
    job_ref,
    job_summary,
    parameters_json,
    result_file,
)
from gridgate.gateway.services.downloads import Download
from gridgate.gateway.services.jobs import JobFilter
from gridgate.web.openapi import BEARER_SCHEME, problem_responses

routes = APIRouter()
"""The UWS job resources, served under both job lists (see the end of this module)."""
MAX_PAGE = 1000
PHASE_VALUES = {"type": "string", "enum": [p.value for p in Phase]}
"""UWS phases, as documented (any case is taken)."""


XML_MEDIA_TYPE = "application/xml"


def _uws_xml() -> ModuleType:
    """The UWS XML renderer, imported with the first XML answer: vo-models and pydantic-xml
    take about 14 MiB that a gateway whose clients all ask for JSON never needs."""
    from gridgate.gateway.handlers import uws_xml

    return uws_xml


def optional(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of an optional query parameter, replacing the one FastAPI derives."""
    return {"anyOf": [schema, {"type": "null"}]}


UWS_XML = (
    "UWS 1.1 XML (`text/xml` too), valid against the UWS 1.1 schema "
    "(https://www.ivoa.net/xml/UWS/UWS-v1.1.xsd): under /uws/jobs by default, under /api/jobs "
    "with `Accept: application/xml` or `?format=xml`."
)


def _negotiated(element: str, etag: bool = True) -> dict[int | str, dict[str, Any]]:
    """The 200 of a resource that answers JSON or UWS XML (``element``), and its 304."""
    answer: dict[str, Any] = {
        "description": f"JSON, or the UWS `{element}` element. {UWS_XML}",
        "content": {
            XML_MEDIA_TYPE: {
                "schema": {"type": "string", "description": f"A UWS 1.1 `{element}` document."}
            }
        },
    }
    if not etag:
        return {200: answer}
    answer["headers"] = {"ETag": {"schema": {"type": "string"}, "description": "Its tag."}}
    return {200: answer, 304: {"description": "Not modified: `If-None-Match` names its ETag."}}


def _see_other(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        303: {
            "description": f"See Other: {what}.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        }
    }


READ = problem_responses(401, 404, 422, 503)
"""What any read of one job can answer besides its document."""
CHANGE = problem_responses(401, 404, 409, 413, 422, 503)
"""What a change of one job can answer besides its redirect."""


def _jobs_url(request: Request) -> str:
    # base_url carries any root_path; url_for would walk every route on each request.
    return str(request.base_url).rstrip("/") + jobs_root(request)


def _job_url(request: Request, job_id: str) -> str:
    return f"{_jobs_url(request)}/{job_id}"


def _phases(values: list[str]) -> tuple[Phase, ...]:
    try:
        return tuple(Phase(v.upper()) for v in values)
    except ValueError as exc:
        raise InvalidRequestError(
            f"PHASE must be one of {', '.join(p.value for p in Phase)}.",
            errors=[{"field": "PHASE", "message": "not a UWS phase"}],
        ) from exc


@routes.get(
    "",
    name="list_jobs",
    response_model=JobList,
    responses={
        **_negotiated("jobs"),
        **problem_responses(401, 422, 503),
    },
)
async def list_jobs(
    request: Request,
    user: User,
    work: Work,
    phase: Annotated[
        list[str], Query(alias="PHASE", json_schema_extra={"items": PHASE_VALUES})
    ] = [],  # noqa: B006 - FastAPI idiom
    after: Annotated[
        str | None,
        Query(alias="AFTER", json_schema_extra=optional({"type": "string", "format": "date-time"})),
    ] = None,
    last: Annotated[int | None, Query(alias="LAST", ge=1)] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """List your jobs, newest first (UWS PHASE/AFTER/LAST, plus cursor paging and a total)."""
    query = JobFilter(
        phases=_phases(phase),
        after=parse_time(after, "AFTER") if after else None,
        last=last,
        cursor=cursor,
        limit=limit,
    )
    page = await work.job_service().list_jobs(user, query)
    base = _jobs_url(request)
    if wants_xml(request):
        return document(
            request,
            _uws_xml().jobs_xml(page.jobs, base),
            XML_MEDIA_TYPE,
            {"X-Total-Count": str(page.total)},
        )
    next_url = None
    if page.next_cursor:
        next_url = str(request.url.include_query_params(cursor=page.next_cursor))
    listing = JobList(
        jobs=[job_ref(j, f"{base}/{j.id}") for j in page.jobs], total=page.total, next=next_url
    )
    return json_document(
        request,
        listing.wire(),
        {"X-Total-Count": str(page.total)}
        | ({"Link": f'<{next_url}>; rel="next"'} if next_url else {}),
    )


@routes.post(
    "",
    status_code=303,
    response_class=Response,
    responses={
        **_see_other("the new job"),
        **problem_responses(401, 403, 413, 422, 503),
    },
    openapi_extra=bodies.CREATE_JOB,
)
async def create_job(request: Request, user: User, work: NewJobWork) -> Response:
    """Create a job (form or JSON): workflow, version, facility, PHASE=RUN, then parameters."""
    job = job_request(await read_fields(request), idempotency_key(request))
    job_id = await work.job_service().create_job(user, job)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@routes.get(
    "/{job_id}",
    response_model=JobSummary,
    responses={**_negotiated("job"), **READ, **problem_responses(429)},
)
async def get_job(
    request: Request,
    job_id: str,
    user: User,
    waiter: Waiter,
    wait: Annotated[int | None, Query(alias="WAIT", ge=-1)] = None,
    phase: Annotated[
        str | None, Query(alias="PHASE", json_schema_extra=optional(PHASE_VALUES))
    ] = None,
) -> Response:
    """The job summary; WAIT=n blocks up to n seconds (capped; -1: the cap) while it is
    active, and in PHASE when given."""
    wanted = _phases([phase])[0] if phase else None
    job = await waiter.wait(user, job_id, wait, wanted)
    url = _job_url(request, job_id)
    if wants_xml(request):
        return document(request, _uws_xml().job_xml(job, url), XML_MEDIA_TYPE)
    return json_document(request, job_summary(job, url).wire())


@routes.delete(
    "/{job_id}",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job list"), **READ},
)
async def delete_job(request: Request, job_id: str, user: User, work: Work) -> Response:
    await work.job_service().delete_job(user, job_id)
    return RedirectResponse(_jobs_url(request), status_code=303)


@routes.post(
    "/{job_id}",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job, or the job list once deleted"), **CHANGE},
    openapi_extra=bodies.POST_JOB,
)
async def post_job(request: Request, job_id: str, user: User, work: Work) -> Response:
    """UWS: ACTION=DELETE deletes the job. PHASE=RUN|ABORT, or parameters, act as on
    /phase and /parameters: UWS 1.0 clients (the AIP uws-client) post them here."""
    fields = await read_fields(request)
    action = fields.get("action")
    service = work.job_service()
    if action is not None:
        if str(action).upper() != "DELETE":
            raise InvalidRequestError(
                "The only action on a job is ACTION=DELETE.",
                errors=[{"field": "ACTION", "message": "must be DELETE"}],
            )
        await service.delete_job(user, job_id)
        return RedirectResponse(_jobs_url(request), status_code=303)
    if "phase" in fields:
        await _change_phase(job_id, user, work, str(fields["phase"]))
    else:
        changes = {k: v for k, v in fields.items() if k not in RESERVED}
        if not changes:
            raise InvalidRequestError(
                "Post ACTION=DELETE, PHASE=RUN or ABORT, or parameters to a job.",
                errors=[{"field": "ACTION", "message": "nothing to do"}],
            )
        await service.set_parameters(user, job_id, changes)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@routes.get("/{job_id}/phase", response_class=PlainTextResponse, responses=READ)
async def get_phase(job_id: str, user: User, work: Work) -> str:
    return (await work.job_service().get_job(user, job_id, details=False)).phase.value


@routes.post(
    "/{job_id}/phase",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job"), **CHANGE},
    openapi_extra=bodies.CHANGE_PHASE,
)
async def post_phase(request: Request, job_id: str, user: User, work: Work) -> Response:
    """PHASE=RUN queues a pending job; PHASE=ABORT stops it."""
    fields = await read_fields(request)
    await _change_phase(job_id, user, work, str(fields.get("phase", "")))
    return RedirectResponse(_job_url(request, job_id), status_code=303)


async def _change_phase(job_id: str, user: User, work: Work, phase: str) -> None:
    service = work.job_service()
    if phase.upper() == "RUN":
        await service.start_job(user, job_id)
    elif phase.upper() == "ABORT":
        await service.abort_job(user, job_id)
    else:
        raise InvalidRequestError(
            "PHASE must be RUN or ABORT.",
            errors=[{"field": "PHASE", "message": "must be RUN or ABORT"}],
        )


@routes.get("/{job_id}/executionduration", response_class=PlainTextResponse, responses=READ)
async def get_execution_duration(job_id: str, user: User, work: Work) -> str:
    return str((await work.job_service().get_job(user, job_id, details=False)).execution_duration)


@routes.post(
    "/{job_id}/executionduration",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job"), **CHANGE},
    openapi_extra=bodies.CHANGE_EXECUTION_DURATION,
)
async def post_execution_duration(
    request: Request, job_id: str, user: User, work: Work
) -> Response:
    fields = await read_fields(request)
    seconds = parse_seconds(fields.get("executionduration", ""), "EXECUTIONDURATION")
    await work.job_service().set_execution_duration(user, job_id, seconds)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@routes.get("/{job_id}/destruction", response_class=PlainTextResponse, responses=READ)
async def get_destruction(job_id: str, user: User, work: Work) -> str:
    return iso((await work.job_service().get_job(user, job_id, details=False)).destruction) or ""


@routes.post(
    "/{job_id}/destruction",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job"), **CHANGE},
    openapi_extra=bodies.CHANGE_DESTRUCTION,
)
async def post_destruction(request: Request, job_id: str, user: User, work: Work) -> Response:
    fields = await read_fields(request)
    when = parse_time(fields.get("destruction", ""), "DESTRUCTION")
    await work.job_service().set_destruction(user, job_id, when)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@routes.get("/{job_id}/quote", response_class=PlainTextResponse, responses=READ)
async def get_quote(job_id: str, user: User, work: Work) -> str:
    """The predicted completion time; empty while unknown (UWS xsi:nil)."""
    return iso((await work.job_service().get_job(user, job_id, details=False)).quote) or ""


@routes.get("/{job_id}/owner", response_class=PlainTextResponse, responses=READ)
async def get_owner(job_id: str, user: User, work: Work) -> str:
    return (await work.job_service().get_job(user, job_id, details=False)).owner


@routes.get(
    "/{job_id}/error",
    response_class=PlainTextResponse,
    responses={**READ, 404: {**READ[404], "description": "No such job, or it is not in ERROR."}},
)
async def get_error(job_id: str, user: User, work: Work) -> Response:
    """The error message of a job in ERROR (text/plain, as UWS clients expect)."""
    job = await work.job_service().get_job(user, job_id, details=False)
    summary = error_summary(job)
    if summary is None:
        raise ResultNotFoundError(f"Job {job_id} is {job.phase.value}, not in ERROR.")
    return PlainTextResponse(summary.message)


@routes.get(
    "/{job_id}/parameters",
    response_model=dict[str, str],
    responses={**_negotiated("parameters"), **READ},
)
async def get_parameters(request: Request, job_id: str, user: User, work: Work) -> Response:
    job = await work.job_service().get_job(user, job_id, details=False)
    if wants_xml(request):
        return document(request, _uws_xml().parameters_xml(job), XML_MEDIA_TYPE)
    return json_document(request, parameters_json(job))


@routes.post(
    "/{job_id}/parameters",
    status_code=303,
    response_class=Response,
    responses={**_see_other("the job"), **CHANGE},
    openapi_extra=bodies.CHANGE_PARAMETERS,
)
async def post_parameters(request: Request, job_id: str, user: User, work: Work) -> Response:
    """Change parameters of a PENDING job (form or JSON); validated again as a whole."""
    fields = await read_fields(request)
    changes = {k: v for k, v in fields.items() if k not in RESERVED}
    await work.job_service().set_parameters(user, job_id, changes)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@routes.get(
    "/{job_id}/results",
    response_model=Results,
    responses={**_negotiated("results", etag=False), **READ},
)
async def get_results(request: Request, job_id: str, user: User, work: Work) -> Response:
    """The job's results: size, checksums, Rucio DID and a short-lived signed URL each."""
    job = await work.job_service().get_job(user, job_id)
    url = _job_url(request, job_id)
    if wants_xml(request):
        return document(request, _uws_xml().results_xml(job, url), XML_MEDIA_TYPE)
    downloads, now = work.download_service(), datetime.now(UTC)
    signed = job.phase != Phase.ARCHIVED
    # Not a conditional document: each answer signs its URLs anew.
    results = Results(
        results=[
            result_file(url, r, downloads.sign(job_id, r.name, now) if signed else None)
            for r in job.results
        ],
        dataset=job.data_dataset,
    )
    return JSONResponse(results.wire(), headers={"Vary": "Accept"})


@routes.get(
    "/{job_id}/results/{name:path}",
    response_class=Response,
    responses={
        200: {
            "description": "The file's bytes; `Repr-Digest` and `X-Checksum-Adler32` carry "
            "its checksums.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **_see_other("the file under a short-lived signed URL (a result in the data lake)"),
        **problem_responses(401, 403, 404, 410, 422, 503),
    },
    # The owner's bearer token, or none with a signed URL's ?signed=.
    openapi_extra={"security": [{BEARER_SCHEME: []}, {}]},
)
async def get_result(
    request: Request,
    job_id: str,
    name: str,
    work: Work,
    signed: Annotated[str | None, Query()] = None,
) -> Response:
    """One result file: for its owner (bearer token) or for a ``?signed=`` URL until it
    expires. Checksums in ``Repr-Digest`` and ``X-Checksum-Adler32``."""
    downloads = work.download_service()
    if signed is None:
        download = await downloads.for_owner(await current_user(request), job_id, name)
    else:
        download = await downloads.for_signed(job_id, name, signed)
    return download_response(request, job_id, download)


def download_response(request: Request, job_id: str, download: Download) -> Response:
    record = download.record
    if download.redirect_token is not None:
        query = urlencode({"signed": download.redirect_token})
        location = f"{_job_url(request, job_id)}/results/{quote(record.name)}?{query}"
        return RedirectResponse(location, status_code=303)
    media_type = (
        record.media_type or mimetypes.guess_type(record.name)[0] or "application/octet-stream"
    )
    headers = {
        # A user's file: shared caches must not keep it (no-store is for the job documents).
        "Cache-Control": "private",
        # RFC 9530 digest of the bytes served, plus the grid's own Adler-32.
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(record.sha256)).decode()}:",
        "X-Checksum-Adler32": record.adler32,
    }
    if download.path is not None:
        return FileResponse(
            download.path, media_type=media_type, filename=Path(record.name).name, headers=headers
        )
    if download.chunks is None:
        raise ResultNotFoundError(f"The file of result {record.name!r} is not stored.")
    headers["Content-Length"] = str(record.size)
    headers["Content-Disposition"] = f"attachment; filename*=utf-8''{quote(Path(record.name).name)}"
    return StreamingResponse(
        download.chunks,
        media_type=media_type,
        headers=headers,
        background=BackgroundTask(download.closer.aclose) if download.closer else None,
    )


# JSON first for gridgate's own clients; XML first for stock UWS clients (docs/adr/0008).
router = APIRouter()
router.include_router(routes, prefix=API_JOBS, tags=["jobs"])
uws_router = APIRouter()
uws_router.include_router(routes, prefix=UWS_JOBS, tags=["uws"])

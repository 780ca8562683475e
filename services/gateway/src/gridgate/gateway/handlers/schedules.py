"""Schedules under /api/schedules: job templates fired by a cron or interval trigger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gridgate.gateway.dependencies import User, Work
from gridgate.gateway.handlers.schedule_json import (
    FiringView,
    RunList,
    ScheduleBody,
    ScheduleChangeBody,
    ScheduleList,
    ScheduleView,
    firing_view,
    run_view,
    schedule_ref,
    schedule_view,
)
from gridgate.gateway.services.schedules import MAX_PREVIEW, ScheduleFilter
from gridgate.web.openapi import problem_responses

router = APIRouter(prefix="/api/schedules", tags=["schedules"])
MAX_PAGE = 1000


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _url(request: Request, schedule_id: str) -> str:
    return f"{_base(request)}{router.prefix}/{schedule_id}"


def _jobs_url(request: Request) -> str:
    return f"{_base(request)}/api/jobs"


ONE = problem_responses(401, 404, 422, 503)
"""What any request about one schedule can answer besides its document."""


@router.post(
    "",
    status_code=201,
    response_model=ScheduleView,
    responses={
        201: {"headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}},
        **problem_responses(401, 403, 409, 413, 422, 503),
    },
)
async def create_schedule(
    request: Request, body: ScheduleBody, user: User, work: Work
) -> JSONResponse:
    """Create a schedule: a job template, a trigger, the overlap and misfire policies."""
    schedule = await work.schedule_service().create_schedule(user, body.spec())
    url = _url(request, schedule.id)
    return JSONResponse(
        schedule_view(schedule, url).wire(), status_code=201, headers={"Location": url}
    )


@router.get("", response_model=ScheduleList, responses=problem_responses(401, 422, 503))
async def list_schedules(
    request: Request,
    user: User,
    work: Work,
    paused: Annotated[bool | None, Query()] = None,
    workflow: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONResponse:
    """Your schedules, newest first, with cursor paging and a total."""
    query = ScheduleFilter(paused=paused, workflow=workflow, cursor=cursor, limit=limit)
    page = await work.schedule_service().list_schedules(user, query)
    next_url = (
        str(request.url.include_query_params(cursor=page.next_cursor)) if page.next_cursor else None
    )
    listing = ScheduleList(
        schedules=[schedule_ref(s, _url(request, s.id)) for s in page.schedules],
        total=page.total,
        next=next_url,
    )
    return JSONResponse(listing.wire(), headers={"X-Total-Count": str(page.total)})


@router.get("/{schedule_id}", response_model=ScheduleView, responses=ONE)
async def get_schedule(
    request: Request,
    schedule_id: str,
    user: User,
    work: Work,
    preview: Annotated[int | None, Query(ge=1, le=MAX_PREVIEW)] = None,
) -> JSONResponse:
    """The schedule; ``preview=n`` adds its next n fire times."""
    service = work.schedule_service()
    schedule = await service.get_schedule(user, schedule_id)
    times = service.preview(schedule, preview) if preview is not None else None
    return JSONResponse(schedule_view(schedule, _url(request, schedule_id), times).wire())


@router.patch(
    "/{schedule_id}",
    response_model=ScheduleView,
    responses={**ONE, **problem_responses(403, 413)},
)
async def change_schedule(
    request: Request, schedule_id: str, body: ScheduleChangeBody, user: User, work: Work
) -> JSONResponse:
    """Change fields of the schedule; ``{"paused": true}`` pauses it, ``false`` resumes it."""
    schedule = await work.schedule_service().change_schedule(user, schedule_id, body.changes())
    return JSONResponse(schedule_view(schedule, _url(request, schedule_id)).wire())


@router.delete("/{schedule_id}", status_code=204, response_class=Response, responses=ONE)
async def delete_schedule(schedule_id: str, user: User, work: Work) -> Response:
    """Delete the schedule and its runs; the jobs it made stay."""
    await work.schedule_service().delete_schedule(user, schedule_id)
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/run",
    status_code=201,
    response_model=FiringView,
    responses={**ONE, **problem_responses(409)},
)
async def run_schedule_now(
    request: Request, schedule_id: str, user: User, work: Work
) -> JSONResponse:
    """Fire the schedule now (its overlap policy still applies)."""
    firing = await work.schedule_service().run_now(user, schedule_id)
    return JSONResponse(firing_view(firing, _jobs_url(request)).wire(), status_code=201)


@router.get("/{schedule_id}/runs", response_model=RunList, responses=ONE)
async def list_runs(
    request: Request,
    schedule_id: str,
    user: User,
    work: Work,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONResponse:
    """Every firing, newest first: nominal time, actual time, job created or skipped and why."""
    runs = await work.schedule_service().runs(user, schedule_id, before, limit)
    next_url = (
        str(request.url.include_query_params(before=runs[-1].id)) if len(runs) == limit else None
    )
    jobs_url = _jobs_url(request)
    return JSONResponse(RunList(runs=[run_view(r, jobs_url) for r in runs], next=next_url).wire())

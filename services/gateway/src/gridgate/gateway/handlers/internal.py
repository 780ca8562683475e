"""Routes only our workers call, authenticated by a shared secret (docs/adr/0002)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from gridgate.contracts.internal import INTERNAL_TOKEN_HEADER, JOB_OWNER_PATH
from gridgate.gateway.dependencies import Work
from gridgate.gateway.exceptions import InternalAuthError, JobNotFoundError

router = APIRouter(prefix="/internal/v1", tags=["internal"], include_in_schema=False)


def _check(request: Request, presented: str | None) -> None:
    expected = request.app.state.context.settings.internal_token.get_secret_value()
    if not expected or not presented or not hmac.compare_digest(expected, presented):
        raise InternalAuthError("This route is for gridgate's own workers.")


@router.get("/in-flight")
async def in_flight(
    request: Request,
    work: Work,
    facility: Annotated[str, Query()],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    after: Annotated[str | None, Query(max_length=32)] = None,
    token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None,
) -> Response:
    """A page of the jobs a facility still runs, with their tasks, for the monitor's bulk
    poll; ``next`` is the ``after`` of the following page (``null``: the last page)."""
    _check(request, token)
    jobs = await work.job_service().in_flight(facility, limit, after)
    body = {
        "jobs": [
            {
                "job_id": j.id,
                "owner": j.owner,
                "group": j.group_name,
                "phase": j.phase.value,
                "tasks": [
                    {
                        "index": t.index,
                        "facility_job_id": t.facility_job_id,
                        "phase": t.phase.value,
                        "facility_status": t.facility_status,
                        "exit_code": t.exit_code,
                        "detail": t.detail,
                    }
                    for t in j.tasks
                ],
            }
            for j in jobs
        ],
        "next": jobs[-1].id if len(jobs) == limit else None,
    }
    # Tens of thousands of plain values: serialised directly, not walked by FastAPI's encoder.
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(JOB_OWNER_PATH.removeprefix(router.prefix))
async def job_owner(
    request: Request,
    job_id: str,
    work: Work,
    token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None,
) -> dict[str, Any]:
    """Whose a job is, for the auth service before it hands out that user's proxy."""
    _check(request, token)
    ownership = await work.job_service().owner_of(job_id)
    if ownership is None:
        raise JobNotFoundError(f"There is no job {job_id}.")
    # "final": the job's facility work is over, so no worker needs its owner's proxy.
    return {
        "owner": ownership.owner,
        "vo": ownership.vo,
        "group": ownership.group_name,
        "final": ownership.settled,
    }

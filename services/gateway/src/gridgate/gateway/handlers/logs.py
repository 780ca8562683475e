"""A job's stdout and stderr (gridgate's extension of the UWS job resource)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.responses import Response

from gridgate.gateway.dependencies import User, Work
from gridgate.gateway.handlers.jobs import download_response
from gridgate.gateway.services.logs import LivePeek, Stream
from gridgate.web.openapi import problem_responses

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
TaskQuery = Annotated[int, Query(ge=0, description="Which task of a sweep (0-based).")]
LOG_RESPONSES = {
    200: {
        "description": "What the task wrote: so far while it runs (`X-Gridgate-Log-Source` "
        "names where it was read), all of it once it ended."
    },
    **problem_responses(401, 404, 422, 503),
}


async def _log(
    request: Request, job_id: str, stream: Stream, task: int, user: User, work: Work
) -> Response:
    found = await work.log_service().read(user, job_id, stream, task)
    if isinstance(found, LivePeek):
        # What the facility shows of a running task now: never cached, marked as partial.
        return PlainTextResponse(
            found.text,
            headers={"Cache-Control": "no-store", "X-Gridgate-Log-Source": found.source},
        )
    return download_response(request, job_id, found)


@router.get("/{job_id}/stdout", response_class=PlainTextResponse, responses=LOG_RESPONSES)
async def get_stdout(
    request: Request, job_id: str, user: User, work: Work, task: TaskQuery = 0
) -> Response:
    """A task's standard output: what it wrote so far while it runs, all of it once it ends."""
    return await _log(request, job_id, "stdout", task, user, work)


@router.get("/{job_id}/stderr", response_class=PlainTextResponse, responses=LOG_RESPONSES)
async def get_stderr(
    request: Request, job_id: str, user: User, work: Work, task: TaskQuery = 0
) -> Response:
    """A task's standard error: live on the local facility; from DIRAC once the job ends."""
    return await _log(request, job_id, "stderr", task, user, work)

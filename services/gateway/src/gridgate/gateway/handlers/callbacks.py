"""The job callback: a job's wrapper on a worker node reports its tasks.

It authenticates with the job's own token, not a user's IAM token: this router does not use
the ``User`` dependency the other /api routes have.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from gridgate.contracts.callback import CALLBACK_PATH, CallbackUpdate
from gridgate.gateway.dependencies import Work
from gridgate.web.openapi import problem_responses

router = APIRouter(tags=["jobs"])
job_token = HTTPBearer(
    scheme_name="jobToken",
    description="The job's own callback token, handed to its wrapper at submission; a user's "
    "token is refused.",
    # The service answers a missing or wrong token itself (401 problem+json).
    auto_error=False,
)


@router.post(
    CALLBACK_PATH,
    status_code=204,
    response_class=Response,
    responses={
        **problem_responses(401, 422, 429, 503),
        # An unknown job is refused like a wrong token: nothing tells which jobs exist.
        401: {**problem_responses(401)[401], "description": "No token, or not this job's."},
    },
)
async def job_callback(
    job_id: str,
    update: CallbackUpdate,
    work: Work,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(job_token)] = None,
) -> Response:
    """Report a task's start, progress or end (the job's wrapper, with its job token).

    A repeated update changes nothing. The job's phase stays the monitor's to set.
    """
    await work.callback_service().record(job_id, _token(credentials), update)
    return Response(status_code=204)


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return (credentials.credentials.strip() or None) if credentials else None

"""The job callback: a job's wrapper on a worker node reports its tasks.

It authenticates with the job's own token, not a user's IAM token: this router does not use
the ``User`` dependency the other /api routes have.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from starlette.responses import Response

from gridgate.contracts.callback import CALLBACK_PATH, CallbackUpdate
from gridgate.gateway.dependencies import Work

router = APIRouter(tags=["jobs"])


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@router.post(
    CALLBACK_PATH,
    status_code=204,
    response_class=Response,
    responses={401: {"description": "No token, or not this running job's token."}},
)
async def job_callback(
    job_id: str,
    update: CallbackUpdate,
    work: Work,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Report a task's start, progress or end (the job's wrapper, with its job token).

    A repeated update changes nothing. The job's phase stays the monitor's to set.
    """
    await work.callback_service().record(job_id, bearer_token(authorization), update)
    return Response(status_code=204)

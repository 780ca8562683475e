"""The job callback: what a job's wrapper reports to the gateway, and the token it presents.

Each job has its own token, derived from a secret the gateway and the submitter share, so the
token never travels on a queue or sits in a database: the gateway keeps only its digest, and
forgets that when the job reaches a final phase. A callback adds history; the phase stays the
monitor's to decide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CALLBACK_PATH: Final = "/api/jobs/{job_id}/callback"
"""Where a job's wrapper reports, with ``Authorization: Bearer <job token>``."""

_HMAC_CONTEXT: Final = "gridgate-callback:v1:"
"""Binds a token to its purpose and version: no other HMAC of the secret can be replayed."""

CallbackEvent = Literal["started", "progress", "ended"]


def callback_token(secret: str, job_id: str) -> str:
    """The callback token of one job: HMAC-SHA256 of the job id, base64url without padding.

    Parameters
    ----------
    secret
        The secret the gateway and the submitter share (their internal token).
    job_id
        The job the token is bound to.
    """
    mac = hmac.new(secret.encode(), (_HMAC_CONTEXT + job_id).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a token: what the gateway stores and compares."""
    return hashlib.sha256(token.encode()).hexdigest()


class CallbackUpdate(BaseModel):
    """One report of a job's wrapper about one of its tasks.

    ``(task_index, event, at)`` identifies an update: a repeated one changes nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_index: int = Field(ge=0)
    event: CallbackEvent
    at: AwareDatetime = Field(description="When it happened on the worker node.")
    exit_code: int | None = Field(default=None, description="The task's exit code (ended).")
    message: str | None = Field(default=None, max_length=1000)


__all__ = ["CALLBACK_PATH", "CallbackEvent", "CallbackUpdate", "callback_token", "token_digest"]

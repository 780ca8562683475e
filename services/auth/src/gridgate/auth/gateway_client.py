"""Asking the gateway whose a job is, over its internal route."""

from __future__ import annotations

import httpx

from gridgate.auth.service import JobOwner
from gridgate.contracts.internal import INTERNAL_TOKEN_HEADER, JOB_OWNER_PATH
from gridgate.core.errors import ProblemError


class GatewayUnavailableError(ProblemError):
    """The auth service could not ask the gateway whose job this is; retry later."""

    slug, title, status = "gateway-unavailable", "Job state unavailable", 503


class GatewayJobOwners:
    def __init__(self, http: httpx.AsyncClient, internal_token: str) -> None:
        self.http = http
        self.internal_token = internal_token

    async def owner_of(self, job_id: str) -> JobOwner | None:
        try:
            response = await self.http.get(
                JOB_OWNER_PATH.format(job_id=job_id),
                headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailableError("The gateway could not be asked about the job.") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise GatewayUnavailableError(f"The gateway answered {response.status_code}.")
        body = response.json()
        return JobOwner(sub=body["owner"], vo=body["vo"], group=body["group"], final=body["final"])

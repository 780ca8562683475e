"""DiracX tokens for our workers: diracx-exchange, the operator's legacy-exchange key.

DiracX has no token exchange: the auth service holds the operator's legacy-exchange key (a
secret, the same trust as the DIRAC robot with FullDelegation) and mints, for a live job, a
token of the DiracX user its owner's IAM ``sub`` is mapped to, in the job's VO and group.
Tokens leave only in the answer to an internal call; they are never logged or stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gridgate.auth.service import JobOwners, NoSuchJobError
from gridgate.core.errors import ProblemError
from gridgate.diracx.tokens import DiracXIdentity, DiracXTokenRefusedError, LegacyExchange

audit = structlog.get_logger("gridgate.audit")


class DiracXUserUnknownError(ProblemError):
    """The job's owner has no DiracX account this deployment knows of (diracx-exchange maps
    IAM subjects to DiracX usernames), or DiracX refuses them the job's group."""

    slug, title, status = "diracx-user-unknown", "No DiracX account for this user", 403


class DiracXUnavailableError(ProblemError):
    """This auth service has no DiracX credential mode configured."""

    slug, title, status = "diracx-unavailable", "No DiracX credentials configured", 503


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_at: float


class DiracXTokenService:
    """Tokens of a live job's owner, or of gridgate's robot, minted with the exchange key."""

    def __init__(
        self,
        exchange: LegacyExchange,
        jobs: JobOwners,
        users: dict[str, str],
        robot: DiracXIdentity | None,
    ) -> None:
        self.exchange = exchange
        self.jobs = jobs
        self.users = users
        self.robot_identity = robot

    async def for_job(self, job_id: str) -> IssuedToken:
        owner = await self.jobs.owner_of(job_id)
        if owner is None or owner.group is None or owner.final:
            audit.warning("diracx token refused", job_id=job_id, reason="no live job with a group")
            raise NoSuchJobError(f"No live job {job_id} with a group.")
        user = self.users.get(owner.sub)
        if user is None:
            audit.warning("diracx token refused", job_id=job_id, sub=owner.sub, reason="no user")
            raise DiracXUserUnknownError(f"The owner of job {job_id} has no DiracX account.")
        return await self._issue(DiracXIdentity(user, owner.vo, owner.group), job_id=job_id)

    async def for_robot(self) -> IssuedToken:
        if self.robot_identity is None:
            raise DiracXUnavailableError("No DiracX robot is configured.")
        return await self._issue(self.robot_identity, job_id=None)

    async def _issue(self, identity: DiracXIdentity, job_id: str | None) -> IssuedToken:
        try:
            token = await self.exchange.token(identity)
        except DiracXTokenRefusedError as exc:
            audit.warning(
                "diracx token refused", job_id=job_id, user=identity.user, reason="diracx"
            )
            raise DiracXUserUnknownError(str(exc)) from exc
        expires = await self.exchange.expires_at(identity) or 0.0
        audit.info(
            "diracx token issued",
            job_id=job_id,
            user=identity.user,
            group=identity.group,
            mode="diracx-exchange",
        )
        return IssuedToken(token, expires)

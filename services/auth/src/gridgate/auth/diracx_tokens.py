"""DiracX tokens for our workers, in one of two modes.

diracx-exchange: DiracX has no token exchange, so the auth service holds the operator's
legacy-exchange key (a secret, the same trust as the DIRAC robot with FullDelegation) and
mints, for a live job, a token of the DiracX user its owner's IAM ``sub`` is mapped to.
diracx-user-link: each user linked their DiracX account once (gridgate.auth.links); a job's
token comes from its owner's link for the job's VO and group. Either way tokens leave only in
the answer to an internal call and are never logged; links keep theirs sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from gridgate.auth.groups import GroupMap
from gridgate.auth.links.keys import LinkKey
from gridgate.auth.service import (
    CredentialCheck,
    CredentialLifetimeError,
    JobOwners,
    NoSuchJobError,
)
from gridgate.core.errors import ProblemError
from gridgate.diracx.tokens import DiracXIdentity, DiracXTokenRefusedError, LegacyExchange
from gridgate.iam.identity import Identity

if TYPE_CHECKING:
    # Links (and SQLAlchemy under them) exist only in diracx-user-link mode (ADR 0019).
    from gridgate.auth.links.service import DiracXLinkService

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
    """Tokens of a live job's owner (minted, or from their link), or of gridgate's robot."""

    def __init__(
        self,
        exchange: LegacyExchange | None,
        jobs: JobOwners,
        users: dict[str, str],
        robot: DiracXIdentity | None,
        groups: GroupMap,
        links: DiracXLinkService | None = None,
        max_lifetime_s: int = 43200,
    ) -> None:
        self.exchange = exchange
        self.jobs = jobs
        self.users = users
        self.robot_identity = robot
        self.groups = groups
        self.links = links
        self.max_lifetime_s = max_lifetime_s

    @property
    def mode(self) -> str:
        return "diracx-user-link" if self.links is not None else "diracx-exchange"

    async def check(
        self, identity: Identity, vo: str, group: str | None, min_lifetime_s: int
    ) -> CredentialCheck:
        """At submission: may the user's jobs run on DiracX, for long enough? With a link,
        the link's end is the credential's end (the gateway warns the owner before it)."""
        choice = self.groups.choose(identity, group, vo)
        if self.links is not None:
            left = int(await self.links.check(LinkKey(identity.sub, vo, choice.dirac_group)))
        elif identity.sub not in self.users:
            raise DiracXUserUnknownError("You have no DiracX account known to this deployment.")
        else:
            # a minted token is renewed for as long as the job lives
            left = self.max_lifetime_s
        if left < min_lifetime_s:
            raise CredentialLifetimeError(
                f"Your DiracX credential for {choice.dirac_group} lasts {left} s more, but the "
                f"job needs {min_lifetime_s} s (its execution duration plus a margin). Link "
                "your DiracX account again or shorten the job's executionduration.",
                obtainable_s=left,
                needed_s=min_lifetime_s,
            )
        return CredentialCheck(choice.vo, choice.dirac_group, left)

    async def for_job(self, job_id: str) -> IssuedToken:
        owner = await self.jobs.owner_of(job_id)
        if owner is None or owner.group is None or owner.final:
            audit.warning("diracx token refused", job_id=job_id, reason="no live job with a group")
            raise NoSuchJobError(f"No live job {job_id} with a group.")
        if self.links is not None:
            linked = await self.links.access_token(
                LinkKey(owner.sub, owner.vo, owner.group), job_id=job_id
            )
            audit.info(
                "diracx token issued",
                job_id=job_id,
                sub=owner.sub,
                group=owner.group,
                mode=self.mode,
                link_expires_at=linked.link_expires_at,
            )
            return IssuedToken(linked.access_token, linked.expires_at)
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
        if self.exchange is None:
            raise DiracXUnavailableError("No DiracX legacy-exchange key is configured.")
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

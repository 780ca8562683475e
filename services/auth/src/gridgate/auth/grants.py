"""Credential grants: the auth service's signed statement that a job may use a user's proxy.

The gateway asks for a grant when it accepts a job; the grant rides with the job's commands;
a worker later presents it (with the internal secret) to obtain the user's proxy. A grant is
not a credential on its own, and names exactly one user, DIRAC group and job.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from gridgate.core.errors import ProblemError

ALGORITHM = "HS256"
AUDIENCE = "gridgate-auth/grant"


class InvalidGrantError(ProblemError):
    slug, title, status = "invalid-grant", "Invalid credential grant", 403


@dataclass(frozen=True)
class Grant:
    sub: str
    vo: str
    group: str
    job_id: str
    expires_at: int


class GrantSigner:
    def __init__(self, secret: str | None) -> None:
        self._key = OctKey.import_key(secret or secrets.token_urlsafe(48))

    def sign(self, grant: Grant) -> str:
        claims = {
            "sub": grant.sub,
            "vo": grant.vo,
            "grp": grant.group,
            "job": grant.job_id,
            "exp": grant.expires_at,
            "iat": int(time.time()),
            "aud": AUDIENCE,
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> Grant:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            JWTClaimsRegistry(
                aud={"essential": True, "value": AUDIENCE}, exp={"essential": True}
            ).validate(decoded.claims)
            claims = decoded.claims
            return Grant(
                sub=str(claims["sub"]),
                vo=str(claims["vo"]),
                group=str(claims["grp"]),
                job_id=str(claims["job"]),
                expires_at=int(claims["exp"]),
            )
        except (JoseError, KeyError, ValueError) as exc:
            raise InvalidGrantError("The credential grant is not valid.") from exc

"""Bearer-token authentication as a FastAPI dependency."""

from __future__ import annotations

from fastapi import Request

from gridgate.core.errors import AuthenticationError
from gridgate.iam.identity import Identity
from gridgate.iam.validator import TokenValidator


class BearerAuthenticator:
    """Callable dependency: the request's :class:`Identity`, or 401 problem+json."""

    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def __call__(self, request: Request) -> Identity:
        header = request.headers.get("authorization")
        if not header:
            raise AuthenticationError("This request needs an 'Authorization: Bearer' token.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Use the Bearer scheme: 'Authorization: Bearer <token>'.")
        return await self.validator.validate(token.strip())

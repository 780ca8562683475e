"""FastAPI dependencies: the authenticated user and the subscription service.

They read ``app.state``, so the same routes serve in the notifier's own app and, under
``gridgate dev``, inside the gateway's app (which then holds the notifier's context too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from gridgate.iam.identity import Identity
from gridgate.notifier.factory import NotifierContext
from gridgate.notifier.services.subscriptions import SubscriptionService
from gridgate.web.auth import BearerAuthenticator
from gridgate.web.openapi import bearer


async def current_user(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Identity:
    """The token's owner, or 401 problem+json."""
    authenticator: BearerAuthenticator = request.app.state.authenticator
    return await authenticator(request)


def subscription_service(request: Request) -> SubscriptionService:
    context: NotifierContext = request.app.state.notifier
    return context.subscriptions


User = Annotated[Identity, Depends(current_user)]
Subscriptions = Annotated[SubscriptionService, Depends(subscription_service)]

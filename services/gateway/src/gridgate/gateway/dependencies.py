"""FastAPI dependencies: the authenticated user and a unit-of-work factory per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from gridgate.gateway.factory import Factory, ProcessContext, job_waiter, unit_of_work
from gridgate.gateway.services.waiting import JobWaiter
from gridgate.iam.identity import Identity
from gridgate.web.auth import BearerAuthenticator
from gridgate.web.openapi import bearer


async def process_context(request: Request) -> ProcessContext:
    # async: FastAPI runs a plain function dependency in a worker thread, a hop per request.
    context: ProcessContext = request.app.state.context
    return context


async def current_user(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Identity:
    """The token's owner, or 401 problem+json.

    ``_declared`` only puts the bearer scheme in the OpenAPI document of every route that
    depends on this; the authenticator reads the header itself.
    """
    authenticator: BearerAuthenticator = request.app.state.authenticator
    return await authenticator(request)


async def request_factory(
    context: Annotated[ProcessContext, Depends(process_context)],
) -> AsyncIterator[Factory]:
    async with unit_of_work(context) as factory:
        yield factory


async def new_job_factory(
    context: Annotated[ProcessContext, Depends(process_context)],
) -> AsyncIterator[Factory]:
    """For creating a job: its connection is checked out only if the request writes."""
    async with unit_of_work(context, on_demand=True) as factory:
        yield factory


async def request_waiter(
    context: Annotated[ProcessContext, Depends(process_context)],
) -> JobWaiter:
    """WAIT reads a job without holding a connection while it blocks."""
    return job_waiter(context)


User = Annotated[Identity, Depends(current_user)]
Waiter = Annotated[JobWaiter, Depends(request_waiter)]
# The unit of work ends with the handler, before the response is sent: a connection (on
# SQLite, perhaps the write lock) is not held while the answer goes out to the client.
Work = Annotated[Factory, Depends(request_factory, scope="function")]
NewJobWork = Annotated[Factory, Depends(new_job_factory, scope="function")]

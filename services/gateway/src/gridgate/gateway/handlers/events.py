"""Live event streams as Server-Sent Events: one job's, or all of the caller's (docs/events.md).

FastAPI's own SSE support (``fastapi.sse``) frames the messages; the routes only say what to
send. Every check (the job is the caller's, the resume id is still kept) runs before the
response starts, so a refusal is an ordinary problem+json answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from gridgate.gateway.dependencies import User, process_context
from gridgate.gateway.factory import ProcessContext, event_streamer, open_event_stream
from gridgate.gateway.services.streams import StreamItem, StreamRequest
from gridgate.web.openapi import problem_responses

router = APIRouter(tags=["events"])

Context = Annotated[ProcessContext, Depends(process_context)]
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event: the `id` of the last message received. "
        "Browsers' EventSource sends it by itself when it reconnects.",
    ),
]
LastEventIdQuery = Annotated[
    str | None,
    Query(
        alias="lastEventId",
        description="The same, for clients that cannot set headers; the header wins when "
        "both are given (a reconnecting EventSource keeps its first URL).",
    ),
]

STREAM = {
    200: {
        "description": "A stream of Server-Sent Events (`text/event-stream`). Each message: "
        "`id` an opaque resume token, `event` the CloudEvents type (e.g. "
        "`org.gridgate.job.completed.v1`), `data` the CloudEvent in structured JSON "
        "(docs/events.md). Comment lines keep the stream alive; a message with an `id` and no "
        "data only moves the resume point. The stream ends when the gateway stops, when the "
        "token expires, or when the client falls too far behind: reconnect with "
        "`Last-Event-ID` and nothing is lost or repeated.",
    },
    **problem_responses(401, 404, 410, 422, 429),
}


def message(item: StreamItem) -> ServerSentEvent:
    if item.event is None:
        return ServerSentEvent(
            comment="keep-alive", id=item.position.token() if item.position else None
        )
    return ServerSentEvent(
        raw_data=item.event.body, event=item.event.event_type, id=item.event.position.token()
    )


async def job_stream(
    job_id: str,
    user: User,
    context: Context,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> StreamRequest:
    return await open_event_stream(context, user, job_id, last_event_id or last_event_id_query)


async def all_stream(
    user: User,
    context: Context,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> StreamRequest:
    return await open_event_stream(context, user, None, last_event_id or last_event_id_query)


def _responses() -> dict[int | str, dict[str, Any]]:
    return dict(STREAM)


@router.get(
    "/api/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses=_responses(),
    summary="Stream one job's events",
)
async def job_events(
    stream: Annotated[StreamRequest, Depends(job_stream)], context: Context
) -> AsyncIterator[ServerSentEvent]:
    """The job's events from its first (or after `Last-Event-ID`), then live."""
    async for item in event_streamer(context).items(stream):
        yield message(item)


@router.get(
    "/api/events",
    response_class=EventSourceResponse,
    responses=_responses(),
    summary="Stream the events of all your jobs and schedules",
)
async def all_events(
    stream: Annotated[StreamRequest, Depends(all_stream)], context: Context
) -> AsyncIterator[ServerSentEvent]:
    """Events of the caller's jobs and schedules from now (or after `Last-Event-ID`)."""
    async for item in event_streamer(context).items(stream):
        yield message(item)

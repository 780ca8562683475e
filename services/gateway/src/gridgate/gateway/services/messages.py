"""Putting commands and events into the outbox, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat

from gridgate.broker.publisher import cloud_event
from gridgate.contracts import EVENT_SOURCE, JobEvent, Message, event_type_for, routing_key_for
from gridgate.contracts.events import SEQUENCE_EXTENSION
from gridgate.contracts.phases import Phase
from gridgate.contracts.schedules import (
    ScheduleEvent,
    schedule_event_type,
    schedule_routing_key,
)
from gridgate.gateway.storage.outbox import COMMAND, EVENT, OutboxStore


class Outbox:
    """Stages messages for the outbox table (written at commit); the relay publishes them."""

    def __init__(self, store: OutboxStore) -> None:
        self.store = store

    def command(self, queue: str, message: Message, *, at: datetime) -> None:
        self.store.add(
            kind=COMMAND,
            routing_key=queue,
            message_id=message.message_id,
            message_type=str(getattr(message, "kind", type(message).__name__)),
            job_id=message.job_id,
            body=message.model_dump_json(),
            created_at=at,
        )

    def event(self, data: JobEvent, what: Phase | str) -> None:
        event = cloud_event(
            event_type=event_type_for(what),
            source=EVENT_SOURCE,
            subject=f"jobs/{data.job_id}",
            data=data.model_dump(mode="json"),
            extensions={SEQUENCE_EXTENSION: data.sequence} if data.sequence is not None else None,
        )
        body = ce_rabbitmq.to_structured(event, JSONFormat()).body.decode()
        self.store.add(
            kind=EVENT,
            routing_key=routing_key_for(data.vo, what),
            message_id=event.get_id(),
            message_type=event.get_type(),
            job_id=data.job_id,
            body=body,
            created_at=data.occurred_at,
        )
        self.store.journal.add(
            event_id=event.get_id(),
            event_type=event.get_type(),
            owner=data.owner,
            job_id=data.job_id,
            schedule_id=None,
            body=body,
            created_at=data.occurred_at,
        )

    def schedule_event(self, data: ScheduleEvent) -> None:
        event = cloud_event(
            event_type=schedule_event_type(data.what),
            source=EVENT_SOURCE,
            subject=f"schedules/{data.schedule_id}",
            data=data.model_dump(mode="json"),
        )
        body = ce_rabbitmq.to_structured(event, JSONFormat()).body.decode()
        self.store.add(
            kind=EVENT,
            routing_key=schedule_routing_key(data.vo, data.what),
            message_id=event.get_id(),
            message_type=event.get_type(),
            # The outbox's key column: a schedule's events stay in order with each other.
            job_id=data.schedule_id,
            body=body,
            created_at=data.occurred_at,
        )
        self.store.journal.add(
            event_id=event.get_id(),
            event_type=event.get_type(),
            owner=data.owner,
            job_id=None,
            schedule_id=data.schedule_id,
            body=body,
            created_at=data.occurred_at,
        )

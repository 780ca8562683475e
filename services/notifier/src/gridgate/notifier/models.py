"""Subscriptions, deliveries and the events they carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gridgate.contracts.events import EVENT_TYPE_PREFIX

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
MAX_FILTER_ITEMS = 100


class SubscriptionFilter(BaseModel):
    """Which of the owner's events a subscription receives; an empty list matches all."""

    model_config = ConfigDict(extra="forbid")

    event_types: list[ShortText] = Field(
        default_factory=list,
        max_length=MAX_FILTER_ITEMS,
        description="CloudEvents types, shell patterns allowed: "
        "'org.gridgate.job.completed.v1', 'org.gridgate.job.*'.",
    )
    vos: list[ShortText] = Field(default_factory=list, max_length=MAX_FILTER_ITEMS)
    job_ids: list[ShortText] = Field(default_factory=list, max_length=MAX_FILTER_ITEMS)
    schedule_ids: list[ShortText] = Field(default_factory=list, max_length=MAX_FILTER_ITEMS)

    def matches(self, event: IncomingEvent) -> bool:
        if self.event_types and not any(fnmatchcase(event.type, p) for p in self.event_types):
            return False
        if self.vos and event.vo not in self.vos:
            return False
        if self.job_ids and event.job_id not in self.job_ids:
            return False
        return not (self.schedule_ids and event.schedule_id not in self.schedule_ids)


class SubscriptionCreate(SubscriptionFilter):
    """The body of ``POST /api/subscriptions``."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="The receiver: https (plain http only where the operator allows it)."
    )
    description: Annotated[str, StringConstraints(max_length=1000)] = ""


class SubscriptionUpdate(BaseModel):
    """The body of ``PATCH /api/subscriptions/{id}``: turn a subscription on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


SubscriptionKind = Literal["subscription", "job-hook"]


class Subscription(SubscriptionFilter):
    """A subscription as its owner sees it (never its secret, after creation)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    kind: SubscriptionKind = Field(
        default="subscription",
        description="'job-hook': made by the notifier from a job's notification_url (its "
        "job_ids name the job; it signs with your job-hook secret); 'subscription': yours.",
    )
    url: str
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        default=None, description="Why the notifier turned it off (deliveries kept failing)."
    )
    disabled_at: datetime | None = None
    created_at: datetime


class CreatedSubscription(Subscription):
    """The creation answer: the only time the signing secret is shown."""

    secret: str = Field(
        description="Standard Webhooks signing secret (whsec_...). Shown once: keep it."
    )


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class JobHookSecret(BaseModel):
    """Your job hooks' signing secret: whether you have one, and since when."""

    created_at: datetime
    shown: bool = Field(
        description="Whether it was ever handed to you. False: the notifier made it for a "
        "job's first hook before you asked for one; rotate it to learn it."
    )


class CreatedJobHookSecret(JobHookSecret):
    """The answer of a creation or rotation: the only time the secret is shown."""

    secret: str = Field(
        description="Standard Webhooks signing secret (whsec_...) of all your job hooks, "
        "the earlier ones too. Shown once: keep it."
    )


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Given up after retrying for give_up_after_s."""


class Delivery(BaseModel):
    """One event on its way to one subscription: the delivery log's line."""

    id: str
    event_id: str
    event_type: str
    subject: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None = Field(description="The start of the receiver's last answer.")
    last_error: str | None
    last_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


@dataclass(frozen=True)
class SubscriptionRecord:
    """A stored subscription, with what only the notifier sees."""

    view: Subscription
    owner: str
    sealed_secret: str | None
    """None on a job hook: it signs with its owner's job-hook secret."""


@dataclass(frozen=True)
class IncomingEvent:
    """A CloudEvent from ``gridgate.events``, with what routing and ordering need."""

    id: str
    type: str
    owner: str
    vo: str | None
    job_id: str | None
    schedule_id: str | None
    order_major: int
    order_minor: int
    body: str
    sequence: int | None = None
    """The job event's number among its job's events (1, 2, ... with no gap), if it has one."""
    hook_url: str | None = None
    """The job's notification URL: its events also go to a hook made for it."""

    @property
    def subject(self) -> str:
        """What orders events: one job (or schedule) at a time."""
        # A schedule's event names the job a firing created, yet belongs to the schedule.
        if self.schedule_id:
            return f"schedule:{self.schedule_id}"
        if self.job_id:
            return f"job:{self.job_id}"
        return f"event:{self.id}"

    @classmethod
    def parse(cls, envelope: dict[str, Any], body: str) -> IncomingEvent:
        """Read the routing fields; ``KeyError``/``TypeError``/``ValueError`` when absent."""
        data = envelope["data"]
        if not isinstance(data, dict):
            raise TypeError("the event's data is not an object")
        job_version = data.get("job_version")
        sequence = data.get("sequence")
        return cls(
            id=str(envelope["id"]),
            type=str(envelope["type"]),
            owner=str(data["owner"]),
            vo=str(data["vo"]) if data.get("vo") is not None else None,
            job_id=str(data["job_id"]) if data.get("job_id") else None,
            schedule_id=str(data["schedule_id"]) if data.get("schedule_id") else None,
            order_major=int(job_version) if job_version is not None else 0,
            order_minor=int(data.get("ordinal") or 0),
            body=body,
            # Numbers count a job's events; a schedule's events are ordered by the window.
            sequence=int(sequence)
            if sequence is not None and data.get("job_id") and not data.get("schedule_id")
            else None,
            # Only a job's own events make its hook (a schedule's event may name a job).
            hook_url=str(data["notification_url"])
            if data.get("notification_url")
            and data.get("job_id")
            and not data.get("schedule_id")
            and str(envelope["type"]).startswith(EVENT_TYPE_PREFIX)
            else None,
        )


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery, ready to send."""

    id: str
    subscription_id: str
    event_id: str
    url: str
    sealed_secret: str | None
    """The subscription's own, or for a job hook its owner's job-hook secret (None if the
    owner has none: the attempt fails and is retried)."""
    body: str
    attempts: int
    created_at: datetime
    hold_released: bool = False
    """Claimed although an earlier event of its job never arrived (order_hold_s passed)."""


@dataclass(frozen=True)
class OutboxEvent:
    """A CloudEvent of the notifier's own, serialised, waiting in its outbox."""

    message_id: str
    message_type: str
    routing_key: str
    body: str

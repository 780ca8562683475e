"""Schedule events: published by the gateway on the ``gridgate.events`` topic exchange.

Each event is a CloudEvents 1.0 envelope (structured JSON mode) whose ``data`` is a
:class:`ScheduleEvent`. Routing key ``schedule.<vo>.<what>`` with ``what`` one of
``fired`` (a firing created a job), ``skipped`` (a firing created none, and why) or
``paused`` (the schedule paused itself), so a subscriber binds, say, ``schedule.cta.*``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridgate.contracts.events import topic_word

SCHEDULE_EVENT_TYPE_PREFIX: Final = "org.gridgate.schedule."

ScheduleEventKind = Literal["fired", "skipped", "paused"]


class ScheduleEvent(BaseModel):
    """The data of a schedule event (version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    schedule_id: str
    owner: str
    vo: str
    what: ScheduleEventKind
    occurred_at: datetime
    nominal_time: datetime | None = Field(
        default=None, description="The firing's nominal time; none for 'paused'."
    )
    job_id: str | None = Field(default=None, description="The job a firing created.")
    reason: str | None = Field(default=None, description="Why a firing was skipped, or paused.")


def schedule_routing_key(vo: str, what: ScheduleEventKind) -> str:
    """Return ``schedule.<vo>.<what>``."""
    return f"schedule.{topic_word(vo)}.{what}"


def schedule_event_type(what: ScheduleEventKind) -> str:
    """Return the CloudEvents ``type``, e.g. ``org.gridgate.schedule.fired.v1``."""
    return f"{SCHEDULE_EVENT_TYPE_PREFIX}{what}.v1"

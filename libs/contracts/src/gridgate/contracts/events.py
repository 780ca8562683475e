"""Job events: published by the gateway on the ``gridgate.events`` topic exchange.

Each event is a CloudEvents 1.0 envelope (structured JSON mode) whose ``data`` is a
:class:`JobEvent`. Routing key ``job.<vo>.<phase>`` (``phase`` in lower case, or
``results_staged`` or ``credential_expiring``), so a subscriber binds, say, ``job.cta.*``
or ``job.*.completed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from gridgate.contracts.phases import Phase

EVENT_SOURCE: Final = "/gridgate/gateway"
SEQUENCE_EXTENSION: Final = "jobsequence"
"""CloudEvents extension attribute (Integer) repeating ``JobEvent.sequence``. Not the
standard ``sequence`` extension: that one orders all events of a ``source`` as strings, ours
counts one job's events."""
EVENT_TYPE_PREFIX: Final = "org.gridgate.job."
RESULTS_STAGED: Final = "results_staged"
CREDENTIAL_EXPIRING: Final = "credential_expiring"


class JobEvent(BaseModel):
    """The data of a job event (version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    job_id: str
    owner: str
    vo: str
    phase: Phase
    previous_phase: Phase | None = None
    occurred_at: datetime
    source: str = Field(description="Who caused it: user, submitter, monitor, results, gateway.")
    detail: str | None = None
    workflow_id: str
    run_id: str | None = None
    results: int | None = Field(default=None, description="Number of result files, when staged.")
    job_version: int | None = Field(
        default=None,
        description="The job's version when this happened; with ``ordinal`` it orders one job's "
        "events (the relay may publish them out of order).",
    )
    ordinal: int = Field(
        default=0, description="Position among the events of one job version (0, 1, ...)."
    )
    sequence: int | None = Field(
        default=None,
        description="The event's number among its job's events: 1, 2, 3, ... with no gap, so "
        "a consumer that has n and not n - 1 knows one is still on its way. None on events of "
        "jobs from before it existed (their later events count from 1).",
    )
    notification_url: str | None = Field(
        default=None,
        description="The job's own webhook, given at its creation: the notifier sends the "
        "job's events there. On every event of the job, so whichever reaches the notifier "
        "first makes the hook.",
    )

    @property
    def order_key(self) -> tuple[int, int]:
        """Sort key of one job's events: later events have greater keys."""
        return (self.job_version or 0, self.ordinal)


def topic_word(text: str) -> str:
    """``text`` fit to be one word of a topic routing key."""
    # A topic word may not contain '.', '*' or '#'; VO names such as 'vo.cta.in2p3.fr' do.
    return text.replace(".", "_").replace("*", "_").replace("#", "_")


def routing_key_for(vo: str, what: Phase | str) -> str:
    """Return ``job.<vo>.<phase>`` for a phase, or ``job.<vo>.results_staged``."""
    word = what.value.lower() if isinstance(what, Phase) else what
    return f"job.{topic_word(vo)}.{word}"


def event_type_for(what: Phase | str) -> str:
    """Return the CloudEvents ``type``, e.g. ``org.gridgate.job.completed.v1``."""
    word = what.value.lower() if isinstance(what, Phase) else what
    return f"{EVENT_TYPE_PREFIX}{word}.v1"

"""The operator's choices that the gateway's services apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from gridgate.web.outbound import OutboundPolicy

MAX_OUTPUT_MB = 1024


@dataclass(frozen=True)
class JobPolicy:
    """Operator choices the services apply."""

    default_destruction: timedelta = timedelta(days=30)
    max_destruction: timedelta = timedelta(days=365)
    """The latest destruction time a client may set, from now."""
    worker_python: str = "python3"
    wait_cap_s: int = 60
    credential_margin_s: int = 3600
    retention: Literal["archive", "delete"] = "archive"
    """At a job's destruction time: archive it (UWS ARCHIVED) or delete it."""
    retention_rule_lifetime_s: int | None = None
    """Lifetime given to a destroyed or deleted job's Rucio rules; ``None``: kept."""
    facility_grace_s: int = 900
    """How long after a job ends (or is deleted) workers may still act as its owner on the
    facility: kill, delete and collect run after the phase is final."""
    callback_secret: str | None = field(default=None, repr=False)
    """Key of the jobs' callback tokens (shared with the submitter); ``None``: no callbacks."""
    stall_after_s: int = 900
    """An active job with no recorded change for this long is looked at: a submission or a
    collection that never came back is sent again, anything else gets a stall reason."""
    max_redrives: int = 3
    """Submissions or collections sent again before the job goes to ERROR."""
    idempotency_ttl_s: int = 86400
    """How long a client's Idempotency-Key keeps answering with its job."""
    event_retention_s: int = 7 * 86400
    """How long the event journal keeps events for streams to resume from."""
    notification_policy: OutboundPolicy | None = None
    """The rules a job's notification URL must pass (the notifier's); ``None``: the
    operator does not offer notification URLs."""


@dataclass(frozen=True)
class SchedulePolicy:
    """Operator limits on schedules (docs/schedules.md)."""

    max_per_user: int = 100
    min_interval_s: int = 300
    """No schedule fires more often than this."""
    max_catch_up: int = 10
    """Most missed firings a catch-up schedule runs after downtime."""
    misfire_grace_s: int = 300
    """A firing this late is still on time (when the schedule sets no grace of its own)."""
    credential_failures_to_pause: int = 3
    """Consecutive firings without a credential after which the schedule pauses itself."""


__all__ = ["MAX_OUTPUT_MB", "JobPolicy", "SchedulePolicy"]

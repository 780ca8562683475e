"""Which due firings of a schedule run, and which are skipped, after a pause in the rounds.

A firing is *late* when the scheduler gets to it more than the schedule's grace period after
its nominal time (the gateway was down, or the database was). On-time firings always run;
late ones follow the schedule's misfire policy:

* ``skip``: none runs; each is recorded as skipped;
* ``run-once``: the latest runs, the others are recorded as coalesced into it;
* ``catch-up``: the latest N run (N the schedule's ``max``, capped by the operator), the
  older ones are recorded as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gridgate.gateway.models.schedule import Schedule
from gridgate.gateway.services.triggers import next_fire_after

MAX_FIRINGS_PER_ROUND = 500
"""Due nominal times handled in one round; the rest wait for the next round."""


@dataclass(frozen=True)
class RoundPlan:
    fire: list[datetime] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    next_fire_at: datetime | None = None


def plan_round(schedule: Schedule, now: datetime, max_catch_up: int) -> RoundPlan:
    """What to do with the firings of ``schedule`` due by ``now``."""
    due: list[datetime] = []
    anchor = schedule.start or schedule.created_at
    upcoming = schedule.next_fire_at
    while upcoming is not None and upcoming <= now and len(due) < MAX_FIRINGS_PER_ROUND:
        if schedule.end is not None and upcoming > schedule.end:
            upcoming = None
            break
        due.append(upcoming)
        upcoming = next_fire_after(schedule.trigger, anchor, upcoming)
    if upcoming is not None and schedule.end is not None and upcoming > schedule.end:
        upcoming = None
    grace = timedelta(seconds=schedule.misfire_grace_s)
    late = [t for t in due if now - t > grace]
    on_time = [t for t in due if now - t <= grace]
    if schedule.misfire == "skip" or not late:
        reason = "missed: the scheduler was not running then (misfire policy skip)"
        return RoundPlan(on_time, [(t, reason) for t in late], upcoming)
    if schedule.misfire == "run-once":
        kept = late[-1]
        reason = (
            f"missed: coalesced into the firing of {kept.isoformat()} (misfire policy run-once)"
        )
        return RoundPlan([kept, *on_time], [(t, reason) for t in late[:-1]], upcoming)
    allowed = min(schedule.catch_up_max, max_catch_up)
    kept_late = late[len(late) - allowed :] if allowed else []
    dropped = late[: len(late) - len(kept_late)]
    reason = f"missed: more than {allowed} firings were missed (misfire policy catch-up)"
    return RoundPlan([*kept_late, *on_time], [(t, reason) for t in dropped], upcoming)


def first_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The first nominal time after ``now`` (or at the schedule's start, if later)."""
    after = now
    if schedule.start is not None and schedule.start > now:
        after = schedule.start - timedelta(microseconds=1)
    upcoming = next_fire_after(schedule.trigger, schedule.start or schedule.created_at, after)
    if schedule.end is not None and upcoming > schedule.end:
        return None
    return upcoming


__all__ = ["MAX_FIRINGS_PER_ROUND", "RoundPlan", "first_fire", "plan_round"]

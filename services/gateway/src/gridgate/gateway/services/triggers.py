"""When a schedule fires: cron expressions in a time zone, fixed intervals, and new data.

A ``new-data`` trigger is looked at like an interval (every ``interval_s``); whether a look
makes jobs depends on the files found (:mod:`gridgate.gateway.services.scheduler`).

Cron iteration is cronsim's, in the schedule's IANA time zone. Across daylight-saving
changes (docs/schedules.md):

* spring forward: a wall-clock time that does not exist that night (02:30 in
  Europe/Paris) fires once, at the instant the clocks jump (03:00);
* fall back: a wall-clock time that happens twice fires once, at its first occurrence;
  only an expression whose hour field is ``*`` fires by elapsed time, so an hourly job
  still runs every hour, at both 02:30.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from gridgate.gateway.exceptions import InvalidScheduleError
from gridgate.gateway.models.schedule import Trigger

GAPS_CHECKED = 50
"""Consecutive cron firings looked at to find the shortest gap between two."""


def check_trigger(trigger: Trigger, min_interval_s: int, now: datetime) -> None:
    """Refuse a trigger that does not parse or fires more often than ``min_interval_s``."""
    if trigger.kind == "new-data":
        if trigger.files_per_job is None or trigger.files_per_job < 1:
            raise InvalidScheduleError(
                "A new-data trigger makes a job of every files_per_job new files (1 or more).",
                errors=[{"field": "trigger.files_per_job", "message": "must be >= 1"}],
            )
        if not trigger.did:
            raise InvalidScheduleError(
                "A new-data trigger watches a Rucio dataset or container (scope:name).",
                errors=[{"field": "trigger.did", "message": "required"}],
            )
    if trigger.kind in ("interval", "new-data"):
        if trigger.interval_s is None or trigger.interval_s < min_interval_s:
            raise InvalidScheduleError(
                f"The interval must be at least {min_interval_s} s.",
                errors=[{"field": "trigger", "message": f"at least {min_interval_s} s"}],
            )
        return
    zone = _zone(trigger.timezone)
    try:
        iterator = CronSim(trigger.cron or "", now.astimezone(zone))
    except CronSimError as exc:
        raise InvalidScheduleError(
            f"The cron expression {trigger.cron!r} does not parse: {exc}",
            errors=[{"field": "trigger.expression", "message": str(exc)}],
        ) from exc
    if len((trigger.cron or "").split()) != 5:
        raise InvalidScheduleError(
            "The cron expression has five fields: minute hour day-of-month month day-of-week.",
            errors=[{"field": "trigger.expression", "message": "five fields"}],
        )
    times = [t for _, t in zip(range(GAPS_CHECKED), iterator, strict=False)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    if gaps and min(gaps) < min_interval_s:
        raise InvalidScheduleError(
            f"The cron expression fires more often than every {min_interval_s} s.",
            errors=[{"field": "trigger.expression", "message": f"at least {min_interval_s} s"}],
        )


def next_fire_after(trigger: Trigger, anchor: datetime, after: datetime) -> datetime:
    """The first nominal time strictly after ``after`` (UTC).

    ``anchor`` is where an interval counts from (the schedule's start, or its creation).
    """
    if trigger.kind in ("interval", "new-data"):
        assert trigger.interval_s is not None
        step = timedelta(seconds=trigger.interval_s)
        if after < anchor:
            return anchor
        return anchor + step * ((after - anchor) // step + 1)
    return next(_cron_times(trigger, after))


def fire_times(trigger: Trigger, anchor: datetime, after: datetime) -> Iterator[datetime]:
    """Nominal times strictly after ``after``, in order, without end."""
    current = after
    while True:
        current = next_fire_after(trigger, anchor, current)
        yield current


def _cron_times(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    zone = _zone(trigger.timezone)
    by_elapsed_time = (trigger.cron or "").split()[1] == "*"
    for local in CronSim(trigger.cron or "", after.astimezone(zone)):
        # The second pass through a repeated wall-clock hour (fall back): fire only if the
        # expression runs every hour, else the same wall-clock time would fire twice.
        if _is_second_occurrence(local) and not by_elapsed_time:
            continue
        yield local.astimezone(UTC)


def _is_second_occurrence(local: datetime) -> bool:
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset() and (
        local.utcoffset() == local.replace(fold=1).utcoffset()
    )


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(
            f"{name!r} is not an IANA time zone (such as Europe/Paris).",
            errors=[{"field": "trigger.timezone", "message": "unknown time zone"}],
        ) from exc


__all__ = ["check_trigger", "fire_times", "next_fire_after"]

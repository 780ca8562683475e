"""Where live job updates and growing logs come from, behind a seam.

Today both poll the documented routes: ``GET /api/jobs/{id}?WAIT=n`` (the UWS long poll,
answering at once on a phase change) and ``GET /api/jobs/{id}/stdout``. A Server-Sent
Events source (``GET /api/jobs/{id}/events``) can replace :class:`PollingJobUpdates` by
implementing :class:`JobUpdates`, without changing the commands that consume it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from gridgate.cli.api import ApiError, GridgateApi, Json

FINAL_PHASES = frozenset({"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"})
TOO_MANY_WAITS = 429


class JobUpdates(Protocol):
    """A stream of a job's summaries: one whenever it changed, the last one final, or the
    stream ends early at ``deadline`` (a ``time.monotonic()`` value)."""

    def follow(self, job_id: str, deadline: float | None = None) -> Iterator[Json]: ...


class PollingJobUpdates:
    """Job updates by long polling: each request blocks up to ``wait_s`` while the job is
    active and returns at once when its phase changes, so phase changes show without delay
    and task progress inside a phase within ``wait_s``."""

    def __init__(self, api: GridgateApi, wait_s: int = 2) -> None:
        self.api = api
        self.wait_s = wait_s

    def follow(self, job_id: str, deadline: float | None = None) -> Iterator[Json]:
        last: Json | None = None
        wait: int | None = 0
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if wait:
                    wait = max(1, min(wait, int(left)))
            try:
                job = self.api.job(job_id, wait_s=wait)
            except ApiError as exc:
                if exc.status != TOO_MANY_WAITS:
                    raise
                # The user holds too many blocked WAITs (other watchers): poll without one.
                wait = None
                time.sleep(self.wait_s)
                continue
            if job != last:
                yield job
                last = job
            if job["phase"] in FINAL_PHASES:
                return
            if wait is None:
                time.sleep(self.wait_s)
            wait = self.wait_s


class LogFollower:
    """A task's log as it grows: prints what is new at each poll until the job ended."""

    def __init__(self, api: GridgateApi, interval_s: float = 2.0) -> None:
        self.api = api
        self.interval_s = interval_s

    def follow(self, job_id: str, stream: str, task: int) -> Iterator[str]:
        shown = ""
        while True:
            # Read the phase first: a log read after the job ended is the whole log.
            finished = self.api.job(job_id)["phase"] in FINAL_PHASES
            try:
                text = self.api.log(job_id, stream, task)
            except ApiError as exc:
                if exc.status != 404 or finished:
                    raise
                text = ""  # nothing written yet: the task has not started
            # The stored log replaces the live peek at the end: both grow from the same start,
            # so what is past the length shown is new.
            fresh = text[len(shown) :]
            if fresh:
                yield fresh
                shown = text
            if finished:
                return
            time.sleep(self.interval_s)

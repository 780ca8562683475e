"""Where live job updates and growing logs come from, behind a seam.

Job updates come from the job's Server-Sent Events stream (``GET /api/jobs/{id}/events``,
docs/events.md): each event makes the job's JSON be read again. When the stream cannot be
opened (an older gateway, a proxy that buffers or refuses it) they fall back to the UWS long
poll (``GET /api/jobs/{id}?WAIT=n``, answering at once on a phase change). Growing logs are
read again now and then (``GET /api/jobs/{id}/stdout``, from the last byte shown): no event
says a log grew, but the job's events wake the reader at once.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import httpx

from gridgate.cli.api import ApiError, GridgateApi, Json, raise_for

FINAL_PHASES = frozenset({"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"})
TOO_MANY_WAITS = 429
RECONNECT_S = 1.0
QUIET_S = 45.0  # three keep-alive periods of the gateway's default


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


class StreamUnavailableError(Exception):
    """The gateway did not answer the event stream with ``text/event-stream``."""


def sse_messages(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """The ``(id, data)`` of each Server-Sent Events message in ``lines``; ``id`` is None
    when the message set none. Comments (``: keep-alive``) and unknown fields are skipped;
    an id-only message comes with empty ``data`` (a resume point, no event)."""
    event_id: str | None = None
    data: list[str] = []
    seen = False
    for line in lines:
        if not line:
            if seen:
                yield event_id, "\n".join(data)
            event_id, data, seen = None, [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
            seen = True
        elif name == "id" and "\0" not in value:
            event_id = value
            seen = True


class StreamingJobUpdates:
    """Job updates from the job's event stream: the job's JSON first, then again after each
    of its events, until it is final. The stream replays the job's events from its first one,
    so nothing that happened between the first read and the stream's opening is missed; when
    the stream ends early it is opened again after the last id seen. ``fallback`` follows the
    job when no stream can be opened."""

    def __init__(
        self, api: GridgateApi, fallback: JobUpdates | None = None, quiet_s: float = QUIET_S
    ) -> None:
        self.api = api
        self.quiet_s = quiet_s
        self.fallback = fallback if fallback is not None else PollingJobUpdates(api)
        self.fell_back: str | None = None  # why the fallback was taken, if it was

    def follow(self, job_id: str, deadline: float | None = None) -> Iterator[Json]:
        last = self.api.job(job_id)
        yield last
        if last["phase"] in FINAL_PHASES:
            return
        last_id: str | None = None
        opened = False
        while True:
            try:
                for event_id, is_event in self._events(job_id, last_id, deadline):
                    opened = True
                    last_id = event_id or last_id
                    if not is_event:
                        continue
                    job = self.api.job(job_id)
                    if job != last:
                        yield job
                        last = job
                    if job["phase"] in FINAL_PHASES:
                        return
            except httpx.TimeoutException:
                if deadline is not None and time.monotonic() >= deadline:
                    return  # the deadline passed while the stream was quiet
                if not opened:  # not even a keep-alive: a proxy holds the stream back
                    why = f"nothing came on the stream in {self.quiet_s:g} s"
                    yield from self._fall_back(job_id, deadline, last, why)
                    return
                # Quiet for too long once open: open it again below, after the last id.
            except httpx.TransportError:
                if not opened:
                    raise
                # The connection broke: open it again below, after the last id.
            except (StreamUnavailableError, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status in (None, 401, 403, 404):
                    raise
                yield from self._fall_back(job_id, deadline, last, str(exc))
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(RECONNECT_S)  # a stream that keeps ending at once must not spin

    def _fall_back(
        self, job_id: str, deadline: float | None, last: Json, why: str
    ) -> Iterator[Json]:
        self.fell_back = why
        for job in self.fallback.follow(job_id, deadline):
            if job != last:  # its first answer is often the summary shown already
                yield job
                last = job

    def _events(
        self, job_id: str, last_id: str | None, deadline: float | None
    ) -> Iterator[tuple[str | None, bool]]:
        """``(id, is_event)`` for each of the stream's messages (``is_event`` False for a
        resume point without data); ends when the stream does."""
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        # A quiet stream still sends a keep-alive every 15 s (and /api/jobs/{id}/events its
        # replay at once): longer silence is a proxy buffering it. Reads end at the deadline.
        left = None if deadline is None else deadline - time.monotonic()
        read = self.quiet_s if left is None else max(0.1, min(self.quiet_s, left))
        timeout = httpx.Timeout(10.0, read=read)
        with self.api.http.stream(
            "GET", f"/api/jobs/{job_id}/events", headers=headers, timeout=timeout
        ) as answer:
            if not answer.is_success:
                answer.read()  # the problem document, to say why
                raise_for(answer)
            kind = answer.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise StreamUnavailableError(f"the event stream answered {kind or 'no type'}")
            for event_id, data in sse_messages(answer.iter_lines()):
                yield event_id, bool(data)
                if deadline is not None and time.monotonic() >= deadline:
                    raise httpx.ReadTimeout("the deadline passed")


class LogFollower:
    """A task's log as it grows, to the job's end.

    No event says that a log grew, so the log is read every ``interval_s``; a job event
    (its phase changed, above all: it ended) wakes the reader at once. The events come from
    the job's stream, read on a second thread with its own connections, and through
    ``updates`` (by default :class:`StreamingJobUpdates`, which polls when no stream can be
    opened). Each read asks only for the bytes past those shown (an HTTP range); where the
    gateway answers in full (a running task's live view), the bytes already shown are
    skipped: the live view and the stored log grow from the same start.
    """

    def __init__(
        self,
        api: GridgateApi,
        interval_s: float = 2.0,
        updates: Callable[[GridgateApi], JobUpdates] = StreamingJobUpdates,
    ) -> None:
        self.api = api
        self.interval_s = interval_s
        self.updates = updates

    def follow(self, job_id: str, stream: str, task: int) -> Iterator[str]:
        watch = _JobWatch(self.api.twin(), self.updates, job_id)
        watch.start()
        try:
            yield from self._read(watch, job_id, stream, task)
        finally:
            watch.stop()

    def _read(self, watch: _JobWatch, job_id: str, stream: str, task: int) -> Iterator[str]:
        shown = 0
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            # The phase first: a log read after the job ended is the whole log.
            finished = watch.finished()
            try:
                body, ranged = self.api.log_from(job_id, stream, task, shown)
            except ApiError as exc:
                if exc.status != 404 or finished:
                    raise
                body, ranged = b"", False  # nothing written yet: the task has not started
            fresh = body if ranged else body[shown:]
            if fresh:
                shown += len(fresh)
                yield text.decode(fresh)
            if finished:
                if tail := text.decode(b"", final=True):
                    yield tail
                return
            watch.changed.wait(self.interval_s)
            watch.changed.clear()


class _JobWatch:
    """Follows a job's summaries on a daemon thread; ``changed`` is set on each one (and on
    a failure, which ``finished()`` raises again on the reader's thread)."""

    def __init__(
        self, api: GridgateApi, updates: Callable[[GridgateApi], JobUpdates], job_id: str
    ) -> None:
        self.api = api
        self.updates = updates(api)
        self.job_id = job_id
        self.changed = threading.Event()
        self.phase: str | None = None
        self.failure: Exception | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"watch-{job_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for job in self.updates.follow(self.job_id):
                self.phase = job["phase"]
                self.changed.set()
                if self.stopping:
                    return
        except Exception as exc:  # handed to the reader's thread, which raises it
            self.failure = exc
            self.changed.set()

    def finished(self) -> bool:
        if self.failure is not None:
            raise self.failure
        return self.phase in FINAL_PHASES

    def stop(self) -> None:
        # The thread ends at the job's end (its stream ends then); a reader that stops
        # earlier (Ctrl-C) leaves it to die with the process.
        self.stopping = True
        self.api.close()

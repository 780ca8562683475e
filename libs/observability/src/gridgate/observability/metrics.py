"""The Prometheus metrics of gridgate, in the process-wide default registry.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` histograms) and carry
only low-cardinality labels: a queue, a facility, an operation, a phase, an outcome. Never a
job id or a user: those go to the logs.

- ``gridgate_job_transitions_total{phase}``: job phase changes the gateway published (one
  CloudEvent per change), so ``rate()`` gives jobs entering each phase.
- ``gridgate_submissions_total{facility, outcome}``: jobs handed to a facility by a submitter.
- ``gridgate_facility_call_seconds{facility, operation}``: how long facility calls take (the
  local facility today; DIRAC calls use the same histogram), with
  ``gridgate_facility_call_errors_total{facility, operation, error}`` for the failures.
- ``gridgate_message_lag_seconds{queue}``: time between a message's ``sent_at`` and the start
  of its handling, first deliveries only (retries wait on purpose).
- ``gridgate_messages_total{queue, outcome}``: what became of each delivery: ``done``,
  ``retried``, ``usage-error``, ``dead-lettered`` (errors by class) or ``requeued`` (the
  broker failed, not the work: the message comes back).
- ``gridgate_dead_letters_total{queue}``: dead letters taken from ``<queue>.dead`` (their
  jobs failed, the messages parked for an operator); any increase deserves an alert.
- ``gridgate_stalled_jobs_total{action}``: active jobs found without progress past the
  operator's bound, by what the gateway did: ``resubmitted``, ``recollected``, ``failed``
  (sent again too often) or ``noticed`` (a stall reason for the owner).
- ``gridgate_webhook_attempts_total{outcome}``: webhook calls by the notifier: ``delivered``
  (2xx), ``failed`` (retried later) or ``given-up`` (its subscription was disabled), with
  ``gridgate_webhook_call_seconds`` their duration.
- ``gridgate_webhook_delivery_seconds``: from an event's arrival at the notifier to its
  successful delivery (retries included).
- ``gridgate_webhook_out_of_order_total``: deliveries of an event that reached the notifier
  after a later event of the same job had gone out to the same subscription (late by more
  than ``order_window_s``, e.g. redelivered after a notifier crash).
- ``gridgate_webhook_order_hold_released_total``: deliveries of a numbered job event sent
  although an earlier event of the job had not reached the notifier within ``order_hold_s``
  (lost upstream, dead-lettered, or from before the notifier's queue existed).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

JOB_PHASES: Final = frozenset(
    "pending queued executing completed error aborted unknown held suspended archived".split()
)

JOB_TRANSITIONS = Counter(
    "gridgate_job_transitions_total",
    "Job phase changes published by the gateway, by the phase entered.",
    ["phase"],
)
SUBMISSIONS = Counter(
    "gridgate_submissions_total",
    "Jobs handed to a facility by a submitter.",
    ["facility", "outcome"],
)
FACILITY_CALL_SECONDS = Histogram(
    "gridgate_facility_call_seconds",
    "Duration of calls to a facility (submit, status, cancel, purge, outputs).",
    ["facility", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
FACILITY_CALL_ERRORS = Counter(
    "gridgate_facility_call_errors_total",
    "Facility calls that raised, by exception class.",
    ["facility", "operation", "error"],
)
STALLED_JOBS = Counter(
    "gridgate_stalled_jobs_total",
    "Active jobs without progress past the bound, by the gateway's action.",
    ["action"],
)
MESSAGE_LAG_SECONDS = Histogram(
    "gridgate_message_lag_seconds",
    "Time from a message's sent_at to the start of its handling (first deliveries).",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
MESSAGES = Counter(
    "gridgate_messages_total",
    "Deliveries handled by a consumer, by outcome (done, retried, usage-error, dead-lettered, "
    "requeued).",
    ["queue", "outcome"],
)
DEAD_LETTERS = Counter(
    "gridgate_dead_letters_total",
    "Messages dead-lettered from a work queue, by that queue (each one is parked for an operator).",
    ["queue"],
)

WEBHOOK_ATTEMPTS = Counter(
    "gridgate_webhook_attempts_total",
    "Webhook calls by outcome (delivered, failed and retried later, given-up).",
    ["outcome"],
)
WEBHOOK_CALL_SECONDS = Histogram(
    "gridgate_webhook_call_seconds",
    "Duration of one webhook call (connect, send, read the bounded answer).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "gridgate_webhook_delivery_seconds",
    "From an event's arrival at the notifier to its successful delivery, retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 86400),
)

WEBHOOK_OUT_OF_ORDER = Counter(
    "gridgate_webhook_out_of_order_total",
    "Events that reached the notifier after a later event of their job was delivered.",
)

WEBHOOK_ORDER_HOLD_RELEASED = Counter(
    "gridgate_webhook_order_hold_released_total",
    "Deliveries sent after waiting order_hold_s for an earlier event of their job in vain.",
)

T = TypeVar("T")


def render_latest() -> tuple[bytes, str]:
    """The default registry in the Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def observe_job_event(routing_key: str) -> None:
    """Count a published job event ``job.<vo>.<phase>``; other events are not transitions."""
    phase = routing_key.rsplit(".", 1)[-1]
    if routing_key.startswith("job.") and phase in JOB_PHASES:
        JOB_TRANSITIONS.labels(phase=phase).inc()


def observe_webhook_attempt(outcome: str, seconds: float) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
    WEBHOOK_CALL_SECONDS.observe(seconds)


def observe_webhook_delivered(seconds: float) -> None:
    WEBHOOK_DELIVERY_SECONDS.observe(max(0.0, seconds))


def observe_webhook_out_of_order(count: int) -> None:
    WEBHOOK_OUT_OF_ORDER.inc(count)


def observe_webhook_order_hold_released() -> None:
    WEBHOOK_ORDER_HOLD_RELEASED.inc()


def observe_message_outcome(queue: str, outcome: str) -> None:
    MESSAGES.labels(queue=queue, outcome=outcome).inc()


def observe_dead_letter(queue: str) -> None:
    DEAD_LETTERS.labels(queue=queue).inc()


def observe_queue_lag(queue: str, sent_at: datetime, now: datetime | None = None) -> None:
    """Record how long a message waited; clock skew between hosts never yields a negative."""
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    lag = ((now or datetime.now(UTC)) - sent_at).total_seconds()
    MESSAGE_LAG_SECONDS.labels(queue=queue).observe(max(0.0, lag))


def observe_facility_call(facility: str, operation: str, seconds: float, error: str | None) -> None:
    FACILITY_CALL_SECONDS.labels(facility=facility, operation=operation).observe(seconds)
    if error is not None:
        FACILITY_CALL_ERRORS.labels(facility=facility, operation=operation, error=error).inc()
    if operation == "submit":
        SUBMISSIONS.labels(facility=facility, outcome="error" if error else "ok").inc()


def _timed(facility: str, operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(call):

        @functools.wraps(call)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            error: str | None = None
            try:
                return await call(*args, **kwargs)
            except BaseException as exc:
                error = type(exc).__name__
                raise
            finally:
                observe_facility_call(facility, operation, time.perf_counter() - started, error)

        return timed_async

    @functools.wraps(call)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        error: str | None = None
        try:
            return call(*args, **kwargs)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            observe_facility_call(facility, operation, time.perf_counter() - started, error)

    return timed


def instrument_facility(
    facility: T,
    operations: Iterable[str] = ("submit", "status", "cancel", "purge", "outputs"),
    *,
    name: str | None = None,
) -> T:
    """Time the named methods of one facility object (sync or async) and return it.

    The instance's own attributes shadow the methods, so callers keep the facility's type and
    ``asyncio.to_thread(facility.submit, ...)`` times the call in the worker thread.
    """
    label = name or str(getattr(facility, "name", type(facility).__name__))
    for operation in operations:
        call = getattr(facility, operation, None)
        if callable(call):
            setattr(facility, operation, _timed(label, operation, call))
    return facility


__all__ = [
    "instrument_facility",
    "observe_dead_letter",
    "observe_facility_call",
    "observe_job_event",
    "observe_message_outcome",
    "observe_queue_lag",
    "render_latest",
]


def observe_stalled_job(action: str) -> None:
    """Count a stalled job the gateway acted on (``resubmitted``, ``recollected``, ...)."""
    STALLED_JOBS.labels(action=action).inc()

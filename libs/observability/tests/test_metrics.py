"""Metric helpers: facility call timing, job transitions by phase, queue lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from gridgate.observability import (
    instrument_facility,
    observe_job_event,
    observe_queue_lag,
)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Facility:
    name = "metrics-test"

    def submit(self, job_id: str) -> list[str]:
        return [f"{job_id}/0"]

    def status(self, ids: list[str]) -> dict[str, str]:
        raise OSError("facility down")

    async def outputs(self, job_id: str) -> list[str]:
        return ["stdout.txt"]


async def test_instrumented_facility_times_calls_and_counts_errors() -> None:
    labels = {"facility": "metrics-test"}
    before = {
        op: _value("gridgate_facility_call_seconds_count", operation=op, **labels)
        for op in ("submit", "status", "outputs")
    }
    submissions = _value("gridgate_submissions_total", outcome="ok", **labels)
    errors = _value(
        "gridgate_facility_call_errors_total", operation="status", error="OSError", **labels
    )

    facility = instrument_facility(Facility())
    assert facility.submit("job1") == ["job1/0"]
    with pytest.raises(OSError, match="facility down"):
        facility.status(["job1/0"])
    assert await facility.outputs("job1") == ["stdout.txt"]

    for op in ("submit", "status", "outputs"):
        count = _value("gridgate_facility_call_seconds_count", operation=op, **labels)
        assert count == before[op] + 1, op
    assert _value("gridgate_submissions_total", outcome="ok", **labels) == submissions + 1
    assert (
        _value("gridgate_facility_call_errors_total", operation="status", error="OSError", **labels)
        == errors + 1
    )


def test_job_events_count_as_transitions_by_phase_only() -> None:
    queued = _value("gridgate_job_transitions_total", phase="queued")
    staged = _value("gridgate_job_transitions_total", phase="results_staged")
    observe_job_event("job.cta.queued")
    observe_job_event("job.cta.results_staged")  # an event, not a phase
    assert _value("gridgate_job_transitions_total", phase="queued") == queued + 1
    assert _value("gridgate_job_transitions_total", phase="results_staged") == staged


def test_queue_lag_is_measured_from_sent_at_and_never_negative() -> None:
    queue = {"queue": "lag.test"}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    observe_queue_lag("lag.test", now - timedelta(seconds=2), now=now)
    observe_queue_lag("lag.test", now + timedelta(seconds=5), now=now)  # a skewed clock
    assert _value("gridgate_message_lag_seconds_count", **queue) == 2
    assert _value("gridgate_message_lag_seconds_sum", **queue) == pytest.approx(2.0)

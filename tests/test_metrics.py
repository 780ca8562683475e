"""Prometheus metrics after a real job: the gateway's /metrics sees every service (one process)."""

from __future__ import annotations

import asyncio
import re

from gridgate.contracts import GATEWAY_REPORTS_QUEUE, SUBMITTER_QUEUE

from .test_end_to_end import run_to_end


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; labels may come in any order."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1).split(",") for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


async def test_a_job_shows_in_transitions_submissions_facility_calls_and_outcomes(api) -> None:
    http = api("metrics-user")
    before = (await http.get("/metrics")).text
    job = await run_to_end(http, {"workflow": "hello-world", "name": "metrics"})
    assert job["phase"] == "COMPLETED"
    # Transitions are counted when the outbox relay publishes their events, just after the
    # commit that the client already sees: give the relay a moment.
    for _ in range(50):
        response = await http.get("/metrics")
        after = response.text
        if _sample(after, "gridgate_job_transitions_total", phase="completed") > _sample(
            before, "gridgate_job_transitions_total", phase="completed"
        ):
            break
        await asyncio.sleep(0.1)
    assert response.headers["content-type"].startswith("text/plain")

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    # PHASE=RUN at creation: PENDING and QUEUED in one commit, so one event (queued).
    for phase in ("queued", "executing", "completed"):
        assert grew("gridgate_job_transitions_total", phase=phase) >= 1, phase
    assert grew("gridgate_submissions_total", facility="local", outcome="ok") >= 1
    for operation in ("submit", "status", "outputs"):
        assert grew("gridgate_facility_call_seconds_count", facility="local", operation=operation)
    assert grew("gridgate_messages_total", queue=SUBMITTER_QUEUE, outcome="done") >= 1
    assert grew("gridgate_messages_total", queue=GATEWAY_REPORTS_QUEUE, outcome="done") >= 3
    assert grew("gridgate_message_lag_seconds_count", queue=SUBMITTER_QUEUE) >= 1

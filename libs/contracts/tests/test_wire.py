"""The wire: every message round-trips, unknown fields are ignored, routing keys are stable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gridgate.contracts import (
    COMMAND_ADAPTER,
    REPORT_ADAPTER,
    CancelJob,
    CollectResults,
    JobFailureReported,
    JobStateObserved,
    JobSubmitted,
    Phase,
    PurgeJob,
    PurgeResults,
    ResourceLimits,
    ResultFile,
    ResultsStaged,
    SubmitJob,
    TaskSpec,
    TaskState,
    event_type_for,
    routing_key_for,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COMMANDS = [
    SubmitJob(
        job_id="j",
        owner="u",
        vo="cta",
        facility="local",
        workflow_id="w",
        workflow_version="1.0.0",
        tasks=[TaskSpec(index=0, argv=["echo", "hi"])],
        limits=ResourceLimits(execution_duration_s=10),
    ),
    CancelJob(job_id="j", owner="u", facility="local"),
    PurgeJob(job_id="j", owner="u", facility="local"),
    CollectResults(job_id="j", owner="u", vo="cta", facility="local", outputs=["*.txt"]),
    PurgeResults(job_id="j", owner="u"),
]
REPORTS = [
    JobSubmitted(job_id="j", facility="local", facility_job_ids=["j/0"]),
    JobStateObserved(
        job_id="j",
        observed_at=NOW,
        tasks=[
            TaskState(
                index=0, facility_job_id="j/0", phase=Phase.EXECUTING, facility_status="running"
            )
        ],
    ),
    ResultsStaged(
        job_id="j",
        results=[
            ResultFile(
                name="a", size=1, media_type="text/plain", sha256="0" * 64, adler32="00000001"
            )
        ],
    ),
    JobFailureReported(job_id="j", source="submitter", reason="no such dataset"),
]


@pytest.mark.parametrize("message", COMMANDS, ids=lambda m: m.kind)
def test_commands_round_trip(message) -> None:
    assert COMMAND_ADAPTER.validate_json(message.model_dump_json()) == message


@pytest.mark.parametrize("message", REPORTS, ids=lambda m: m.kind)
def test_reports_round_trip(message) -> None:
    assert REPORT_ADAPTER.validate_json(message.model_dump_json()) == message


def test_consumers_ignore_fields_they_do_not_know() -> None:
    body = COMMANDS[1].model_dump(mode="json") | {"priority": 7, "version": 2}
    decoded = COMMAND_ADAPTER.validate_python(body)
    assert isinstance(decoded, CancelJob)
    assert decoded.version == 2
    assert not hasattr(decoded, "priority")


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValidationError):
        COMMAND_ADAPTER.validate_python({"kind": "format-disk", "job_id": "j"})


def test_routing_keys_and_event_types() -> None:
    assert routing_key_for("cta", Phase.COMPLETED) == "job.cta.completed"
    assert routing_key_for("vo.cta.in2p3.fr", Phase.ERROR) == "job.vo_cta_in2p3_fr.error"
    assert routing_key_for("km3net", "results_staged") == "job.km3net.results_staged"
    assert event_type_for(Phase.QUEUED) == "org.gridgate.job.queued.v1"


def test_tasks_are_argument_vectors() -> None:
    with pytest.raises(ValidationError):
        TaskSpec(index=0, argv=[])


def test_data_lake_fields_round_trip_and_older_messages_still_parse() -> None:
    from gridgate.contracts import InputFile

    item = InputFile(
        scope="user.alice",
        name="ds/run/f1.dat",
        lfn="ds/run/f1.dat",
        bytes=3,
        adler32="024d0127",
        urls=["https://se.example.org/f1.dat"],
    )
    submit = SubmitJob(
        job_id="j",
        owner="u",
        vo="cta",
        facility="local",
        workflow_id="w",
        workflow_version="1.0.0",
        tasks=[TaskSpec(index=0, argv=["x"], inputs=[item])],
        limits=ResourceLimits(execution_duration_s=1),
    )
    again = COMMAND_ADAPTER.validate_json(submit.model_dump_json())
    assert isinstance(again, SubmitJob)
    assert again.tasks[0].inputs == [item]
    assert (item.did, item.file_name) == ("user.alice:ds/run/f1.dat", "f1.dat")
    old_collect = COMMAND_ADAPTER.validate_json(
        '{"kind": "collect-results", "job_id": "j", "owner": "u", "vo": "cta", "facility": "local"}'
    )
    assert isinstance(old_collect, CollectResults)
    assert (old_collect.data_scope, old_collect.facility_job_ids) == (None, [])
    old_staged = REPORT_ADAPTER.validate_json(
        '{"kind": "results-staged", "job_id": "j", "results": [{"name": "a", "size": 1, '
        '"media_type": "text/plain", "sha256": "00", "adler32": "00000001"}]}'
    )
    assert isinstance(old_staged, ResultsStaged)
    assert old_staged.dataset is None and old_staged.results[0].did is None
    purge = PurgeResults(job_id="j", owner="u", dataset="cta:d", rule_lifetime_s=60)
    assert COMMAND_ADAPTER.validate_json(purge.model_dump_json()) == purge

"""Every UWS XML document of every phase is valid against the UWS 1.1 schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridgate.contracts.phases import Phase
from gridgate.gateway.handlers import uws_xml
from gridgate.gateway.models.job import Job, ResultRecord

from .uws_schema import assert_valid_uws

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
URL = "http://gridgate.example.org/uws/jobs/j1"


def job(phase: Phase, *, run_id: str | None = None, results: bool = False) -> Job:
    started = phase in {Phase.EXECUTING, Phase.COMPLETED, Phase.ERROR, Phase.ARCHIVED}
    ended = phase in {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED}
    return Job(
        id="j1",
        owner="alice",
        vo="cta",
        group_name=None,
        run_id=run_id,
        workflow_id="hello-world",
        workflow_version="1.0.0",
        facility="local",
        phase=phase,
        parameters={"name": "x <&> \x01 \ufffe", "repeat": 2, "flag": True, "list": [1, 2]},
        creation_time=NOW,
        start_time=NOW + timedelta(seconds=1) if started else None,
        end_time=NOW + timedelta(seconds=2) if ended else None,
        execution_duration=0 if phase == Phase.PENDING else 60,
        destruction=None if phase == Phase.ARCHIVED else NOW + timedelta(days=30),
        quote=None,
        error_type="transient" if phase == Phase.ERROR else None,
        error_message="task 0 exited with 1: \x1b[31mboom" if phase == Phase.ERROR else None,
        task_count=1,
        finished_outcome=None,
        finished_detail=None,
        updated_at=NOW,
        results=[
            ResultRecord("hello.txt", 10, "text/plain", "0" * 64, "00000001", 0),
            ResultRecord("task-0000/stdout.txt", 3, "text/plain", "1" * 64, "00000002", 0),
        ]
        if results
        else [],
    )


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
@pytest.mark.parametrize("results", [False, True], ids=["no-results", "results"])
@pytest.mark.parametrize("run_id", [None, "run-1"], ids=["no-runid", "runid"])
def test_every_document_of_every_phase_is_valid(
    phase: Phase, results: bool, run_id: str | None
) -> None:
    one = job(phase, run_id=run_id, results=results)
    root = assert_valid_uws(uws_xml.job_xml(one, URL))
    for name in ("quote", "startTime", "endTime", "destruction"):
        element = root.find(UWS + name)
        assert element is not None, name
        assert (element.get(XSI_NIL) == "true") == (not element.text), name
    assert root.find(UWS + "results") is not None
    assert (root.find(UWS + "runId") is None) == (run_id is None)
    assert (root.find(UWS + "errorSummary") is not None) == (phase == Phase.ERROR)
    assert_valid_uws(uws_xml.results_xml(one, URL))
    assert_valid_uws(uws_xml.parameters_xml(one))
    assert_valid_uws(uws_xml.jobs_xml([one, job(Phase.PENDING)], "http://x/uws/jobs"))


def test_the_empty_job_list_is_valid() -> None:
    assert_valid_uws(uws_xml.jobs_xml([], "http://x/uws/jobs"))

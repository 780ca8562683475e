"""The shipped catalogue and its look-ups."""

from __future__ import annotations

import pytest

from gridgate.workflows import (
    UnknownWorkflowError,
    UnknownWorkflowVersionError,
    WorkflowCatalogue,
)

SHIPPED = ["concordia-corsika", "cta-mc-production", "hello-world", "input-manifest"]


def test_shipped_catalogue_lists_the_shipped_workflows() -> None:
    catalogue = WorkflowCatalogue.shipped()

    assert [(d.id, d.version) for d in catalogue.list()] == [
        ("concordia-corsika", "1.0.0"),
        ("concordia-corsika", "2.0.0"),
        *[(i, "1.0.0") for i in SHIPPED[1:]],
    ]
    assert [d.id for d in catalogue.latest()] == SHIPPED


def test_standin_flags_match_the_workflows() -> None:
    catalogue = WorkflowCatalogue.shipped()

    assert catalogue.get("hello-world").standin is False
    assert catalogue.get("input-manifest").standin is False
    for workflow_id in ("cta-mc-production", "concordia-corsika"):
        definition = catalogue.get(workflow_id)
        assert definition.standin is True
        assert definition.standin_note and "stand-in" in definition.standin_note


def test_only_concordia_2_runs_in_a_container() -> None:
    catalogue = WorkflowCatalogue.shipped()

    runtimes = {(d.id, d.version): d.requirements.runtime for d in catalogue.list()}
    assert runtimes.pop(("concordia-corsika", "2.0.0")) == "docker"
    assert set(runtimes.values()) == {None}
    assert catalogue.recipe("concordia-corsika", "1.0.0") is None


def test_get_without_version_returns_latest() -> None:
    definition = WorkflowCatalogue.shipped().get("cta-mc-production")

    assert definition.version == "1.0.0"
    assert definition.execution.tasks_from == "number_of_jobs"


def test_unknown_workflow_is_a_404_problem() -> None:
    with pytest.raises(UnknownWorkflowError) as caught:
        WorkflowCatalogue.shipped().get("no-such-workflow")

    problem = caught.value.to_problem()
    assert problem["status"] == 404
    assert problem["type"] == "urn:gridgate:problem:unknown-workflow"
    assert "no-such-workflow" in problem["detail"]


def test_unknown_version_lists_the_available_ones() -> None:
    with pytest.raises(UnknownWorkflowVersionError) as caught:
        WorkflowCatalogue.shipped().get("hello-world", "9.9.9")

    problem = caught.value.to_problem()
    assert problem["status"] == 404
    assert problem["type"] == "urn:gridgate:problem:unknown-workflow-version"
    assert problem["available_versions"] == ["1.0.0"]


def test_versions_of_unknown_workflow_raise() -> None:
    with pytest.raises(UnknownWorkflowError):
        WorkflowCatalogue.shipped().versions("nope")


def test_shipped_catalogue_is_loaded_once() -> None:
    assert WorkflowCatalogue.shipped() is WorkflowCatalogue.shipped()

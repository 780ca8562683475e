"""Rendering tasks: literal values, one task per job, task environment."""

from __future__ import annotations

import pytest

from gridgate.workflows import (
    InvalidParametersError,
    WorkflowCatalogue,
    render_tasks,
    render_value,
    validate_parameters,
)

PYTHON = "/opt/venv/bin/python"


def test_hostile_values_stay_single_literal_argv_elements() -> None:
    definition = WorkflowCatalogue.shipped().get("hello-world")
    hostile = '"; rm -rf / # {python} {repeat} $(id) `id` {'
    parameters = validate_parameters(definition, {"name": hostile})

    (task,) = render_tasks(definition, parameters, python=PYTHON)

    assert task.argv == [
        PYTHON,
        "-m",
        "gridgate.workflows.standins.hello",
        f"--name={hostile}",
        "--repeat=1",
        "--sleep-s=0",
        "--exit-code=0",
    ]
    assert task.argv.count(PYTHON) == 1


def test_value_that_is_exactly_a_placeholder_is_not_expanded() -> None:
    definition = WorkflowCatalogue.shipped().get("hello-world")
    parameters = validate_parameters(definition, {"name": "{python}"})

    (task,) = render_tasks(definition, parameters, python=PYTHON)

    assert "--name={python}" in task.argv


def test_value_starting_with_dashes_cannot_become_an_option() -> None:
    definition = WorkflowCatalogue.shipped().get("hello-world")
    parameters = validate_parameters(definition, {"name": "--exit-code=3"})

    (task,) = render_tasks(definition, parameters, python=PYTHON)

    assert "--name=--exit-code=3" in task.argv
    assert "--exit-code=0" in task.argv


def test_one_task_per_job_with_index_and_count_in_env() -> None:
    definition = WorkflowCatalogue.shipped().get("cta-mc-production")
    parameters = validate_parameters(definition, {"number_of_jobs": "3", "first_run_number": 7})

    tasks = render_tasks(definition, parameters, python=PYTHON)

    assert [task.index for task in tasks] == [0, 1, 2]
    assert [task.env for task in tasks] == [
        {"GRIDGATE_TASK_INDEX": str(i), "GRIDGATE_TASK_COUNT": "3"} for i in range(3)
    ]
    assert all("--first-run=7" in task.argv for task in tasks)
    assert tasks[0].argv == tasks[2].argv


def test_workflow_without_tasks_from_has_one_task() -> None:
    definition = WorkflowCatalogue.shipped().get("concordia-corsika")

    tasks = render_tasks(definition, validate_parameters(definition, {}), python=PYTHON)

    assert len(tasks) == 1
    assert tasks[0].env == {"GRIDGATE_TASK_INDEX": "0", "GRIDGATE_TASK_COUNT": "1"}


def test_booleans_and_lists_render_as_plain_text() -> None:
    definition = WorkflowCatalogue.shipped().get("concordia-corsika")
    parameters = validate_parameters(
        definition, {"cherenkov_output": False, "random_seeds": [5, 6], "energy_slope": -2.7}
    )

    (task,) = render_tasks(definition, parameters, python=PYTHON)

    assert "--cherenkov-output=false" in task.argv
    assert "--seeds=5,6" in task.argv
    assert "--energy-slope=-2.7" in task.argv


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (False, "false"), ([1, 2], "1,2"), (1.5, "1.5"), (3, "3")]
)
def test_render_value(value: object, text: str) -> None:
    assert render_value(value) == text


def test_missing_placeholder_value_is_reported() -> None:
    definition = WorkflowCatalogue.shipped().get("hello-world")

    with pytest.raises(InvalidParametersError) as caught:
        render_tasks(definition, {"name": "x"}, python=PYTHON)

    assert [error["field"] for error in caught.value.errors] == [
        "exit_code",
        "repeat",
        "sleep_s",
    ]

"""Turn a workflow and its validated parameters into the tasks a facility runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gridgate.contracts.tasks import InputFile, TaskSpec
from gridgate.workflows.errors import FieldError, InvalidParametersError
from gridgate.workflows.model import WorkflowDefinition
from gridgate.workflows.placeholders import PYTHON_PLACEHOLDER, find_placeholders, substitute

TASK_INDEX_ENV = "GRIDGATE_TASK_INDEX"
"""Environment variable holding the task's index, ``0`` to ``count - 1``."""

TASK_COUNT_ENV = "GRIDGATE_TASK_COUNT"
"""Environment variable holding the job's number of tasks."""

INPUT_FILES_ENV = "GRIDGATE_INPUT_FILES"
"""Environment variable holding the JSON list of the task's input file names, when it has any."""


def render_value(value: Any) -> str:
    """Render one parameter value as command-line text.

    Parameters
    ----------
    value
        A validated parameter value.

    Returns
    -------
    str
        Booleans as ``true``/``false``, lists comma-joined, other values as ``str``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(render_value(item) for item in value)
    return str(value)


def task_count(definition: WorkflowDefinition, parameters: Mapping[str, Any]) -> int:
    """Return how many tasks a job of ``definition`` with ``parameters`` has.

    Parameters
    ----------
    definition
        The workflow.
    parameters
        Validated parameters.

    Returns
    -------
    int
        The value of the ``tasks_from`` parameter, or 1 when the workflow has none.

    Raises
    ------
    InvalidParametersError
        If the ``tasks_from`` parameter is missing or not a positive integer.
    """
    name = definition.execution.tasks_from
    if name is None:
        return 1
    count = parameters.get(name)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidParametersError([FieldError(field=name, message="must be an integer >= 1")])
    return count


def render_tasks(
    definition: WorkflowDefinition,
    parameters: Mapping[str, Any],
    *,
    python: str,
    inputs: Sequence[Sequence[InputFile]] | None = None,
) -> list[TaskSpec]:
    """Build one :class:`TaskSpec` per task of a job.

    Placeholders are replaced in a single regex pass (never ``str.format``), so a value
    containing braces or shell syntax is passed through untouched, as part of one argv
    element.

    Parameters
    ----------
    definition
        The workflow.
    parameters
        Parameters returned by :func:`~gridgate.workflows.validate_parameters`.
    python
        Path of the Python interpreter on the worker, substituted for ``{python}``.
    inputs
        Input files of each task, when the job has inputs: their number is the number of
        tasks (a dataset split with ``files_per_job``) and overrides ``tasks_from``.

    Returns
    -------
    list of TaskSpec
        Tasks ``0..count-1``, each with ``GRIDGATE_TASK_INDEX`` and ``GRIDGATE_TASK_COUNT``,
        and with inputs, the files and ``GRIDGATE_INPUT_FILES``.

    Raises
    ------
    InvalidParametersError
        If a placeholder's parameter is missing or the task count is invalid.
    """
    names = find_placeholders(definition.execution.command) - {PYTHON_PLACEHOLDER}
    missing = sorted(names - parameters.keys())
    if missing:
        raise InvalidParametersError(
            [FieldError(field=name, message="is required") for name in missing]
        )
    texts = {name: render_value(parameters[name]) for name in names}
    texts[PYTHON_PLACEHOLDER] = python
    argv = [substitute(template, texts.__getitem__) for template in definition.execution.command]
    count = len(inputs) if inputs else task_count(definition, parameters)
    tasks = []
    for index in range(count):
        env = {TASK_INDEX_ENV: str(index), TASK_COUNT_ENV: str(count)}
        files = list(inputs[index]) if inputs else []
        if files:
            env[INPUT_FILES_ENV] = json.dumps([f.file_name for f in files])
        tasks.append(TaskSpec(index=index, argv=list(argv), env=env, inputs=files))
    return tasks

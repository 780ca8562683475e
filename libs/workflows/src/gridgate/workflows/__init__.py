"""The workflow catalogue: versioned definitions, parameter validation, task rendering.

A workflow definition is a YAML file shipped as package data
(``definitions/<id>/<version>.yaml``) holding a JSON Schema of its parameters and an argv
template. :class:`WorkflowCatalogue` loads and checks them; :func:`validate_parameters` turns
a client's values into validated JSON; :func:`render_tasks` builds the facility's tasks.
"""

from gridgate.workflows.catalogue import WorkflowCatalogue
from gridgate.workflows.errors import (
    FieldError,
    InvalidParametersError,
    UnknownWorkflowError,
    UnknownWorkflowVersionError,
    WorkflowDefinitionError,
)
from gridgate.workflows.model import Execution, OrderingRule, Requirements, WorkflowDefinition
from gridgate.workflows.parameters import parameters_digest, validate_parameters
from gridgate.workflows.placeholders import PYTHON_ON_NODE
from gridgate.workflows.rendering import (
    INPUT_FILES_ENV,
    TASK_COUNT_ENV,
    TASK_INDEX_ENV,
    render_tasks,
    render_value,
    task_count,
)
from gridgate.workflows.versions import version_key

__all__ = [
    "INPUT_FILES_ENV",
    "PYTHON_ON_NODE",
    "TASK_COUNT_ENV",
    "TASK_INDEX_ENV",
    "Execution",
    "FieldError",
    "InvalidParametersError",
    "OrderingRule",
    "Requirements",
    "UnknownWorkflowError",
    "UnknownWorkflowVersionError",
    "WorkflowCatalogue",
    "WorkflowDefinition",
    "WorkflowDefinitionError",
    "parameters_digest",
    "render_tasks",
    "render_value",
    "task_count",
    "validate_parameters",
    "version_key",
]

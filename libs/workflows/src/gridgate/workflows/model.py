"""The shape of a workflow definition, as read from its YAML file.

Every model forbids unknown members, so a misspelt key in a definition fails at load instead
of being silently ignored.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, Self

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridgate.workflows.images import Container, check_build_args
from gridgate.workflows.schema_checks import (
    check_command,
    check_numeric_parameter,
    check_output_pattern,
    check_parameter_schema,
    check_tasks_from,
)
from gridgate.workflows.versions import VERSION_PATTERN

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Requirements(BaseModel):
    """What a facility must offer to run one task of the workflow."""

    model_config = _STRICT

    cores: int = Field(default=1, ge=1, description="CPU cores per task.")
    memory_gb: float = Field(default=2.0, gt=0, description="Memory per task, in GB.")
    gpu_count: int = Field(default=0, ge=0, description="GPUs per task.")
    gpu_type: str | None = Field(default=None, description="GPU model, or null for any.")
    walltime_s: int = Field(ge=1, description="Longest a task may need, in seconds.")
    runtime: Literal["docker", "singularity"] | None = Field(
        default=None, description="Container runtime the task needs; null runs it directly."
    )
    note: str | None = Field(default=None, description="Free text, e.g. the future image.")

    @model_validator(mode="after")
    def _gpu_type_needs_gpus(self) -> Self:
        if self.gpu_type is not None and self.gpu_count == 0:
            raise ValueError("gpu_type is set but gpu_count is 0")
        return self


class OrderingRule(BaseModel):
    """A cross-field rule: parameter ``lower`` must be below parameter ``upper``."""

    model_config = _STRICT

    lower: str
    upper: str
    allow_equal: bool = Field(
        default=False, description="Accept lower == upper (e.g. a fixed zenith angle)."
    )


class Execution(BaseModel):
    """How to run the workflow: the argv template, the task count and the outputs."""

    model_config = _STRICT

    command: tuple[str, ...] = Field(
        min_length=1,
        description="argv template; {name} is a parameter, {python} the worker's interpreter.",
    )
    tasks_from: str | None = Field(
        default=None, description="Integer parameter giving the number of tasks; null for one."
    )
    outputs: tuple[str, ...] = Field(
        default=(), description="Glob patterns of result files, relative to the task directory."
    )
    default_execution_duration_s: int = Field(ge=1)

    @model_validator(mode="after")
    def _outputs_stay_inside(self) -> Self:
        for pattern in self.outputs:
            check_output_pattern(pattern)
        return self


class WorkflowDefinition(BaseModel):
    """One version of one workflow in the catalogue."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=64)
    version: str = Field(pattern=VERSION_PATTERN)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    source_ref: str = Field(min_length=1, description="Where the real workflow comes from.")
    standin: bool = Field(description="True if a stand-in program replaces the real one.")
    standin_note: str | None = None
    requirements: Requirements
    # Served as-is by the API, so it stays a plain dict; the catalogue is shared by the whole
    # process, so callers treat it as read-only.
    parameters: dict[str, Any] = Field(description="JSON Schema (draft 2020-12) of parameters.")
    rules: tuple[OrderingRule, ...] = ()
    execution: Execution
    container: Container | None = Field(
        default=None, description="The image recipe; tasks then run in its image."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.standin and not (self.standin_note and self.standin_note.strip()):
            raise ValueError("a stand-in workflow must say so in standin_note")
        check_parameter_schema(self.parameters)
        check_command(self.execution.command, self.parameters)
        if self.execution.tasks_from is not None:
            check_tasks_from(self.execution.tasks_from, self.parameters)
        for rule in self.rules:
            check_numeric_parameter(rule.lower, self.parameters)
            check_numeric_parameter(rule.upper, self.parameters)
        if self.container is not None:
            check_build_args(self.container, self.parameters)
        if self.execution.default_execution_duration_s > self.requirements.walltime_s:
            raise ValueError("default_execution_duration_s exceeds requirements.walltime_s")
        return self

    @cached_property
    def parameters_validator(self) -> Draft202012Validator:
        """The validator of :attr:`parameters`, built once: building it cost about as much
        as checking a job's parameters with it."""
        return Draft202012Validator(self.parameters)

    @property
    def parameter_names(self) -> list[str]:
        """The parameter names, in schema order."""
        return list(self.parameters["properties"])

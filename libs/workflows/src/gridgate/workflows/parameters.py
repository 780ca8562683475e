"""Validate the parameters a client sends for a job against the workflow's schema."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from gridgate.workflows.coercion import CoercionError, coerce_value, is_blank_for
from gridgate.workflows.errors import FieldError, InvalidParametersError, echo
from gridgate.workflows.messages import describe
from gridgate.workflows.model import OrderingRule, WorkflowDefinition


def parameters_digest(parameters: Mapping[str, Any]) -> str:
    """A stable digest of validated parameters, for provenance: ``sha256:<hex>``.

    The parameters are serialised as canonical JSON (sorted keys, no spaces), so equal
    parameters always give the same digest.
    """
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def validate_parameters(definition: WorkflowDefinition, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce, complete and validate a job's parameters.

    Strings (from HTML or UWS form posts) are read as the type the schema declares:
    integers, numbers, booleans (``true/false/1/0/yes/no/on/off``) and comma-separated
    arrays. An empty string for a non-string parameter counts as not given. Defaults fill
    the parameters not given; then the schema and the definition's cross-field rules are
    checked, and every problem is reported at once.

    Parameters
    ----------
    definition
        The workflow (one version) the job runs.
    raw
        Parameter values as received, by name.

    Returns
    -------
    dict
        Every parameter that has a value, in schema order, with JSON types.

    Raises
    ------
    InvalidParametersError
        Naming each bad field, including unknown parameter names.
    """
    schema = definition.parameters
    properties: Mapping[str, Any] = schema["properties"]
    problems = _Problems()
    given: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in properties or is_blank_for(properties[name], value):
            continue
        try:
            given[name] = coerce_value(properties[name], value)
        except CoercionError as exc:
            problems.add(name, str(exc))

    values = {
        name: given[name] if name in given else copy.deepcopy(subschema["default"])
        for name, subschema in properties.items()
        if name in given or ("default" in subschema and name not in problems.fields)
    }
    for name in schema.get("required", []):
        if name not in values and name not in problems.fields:
            problems.add(name, "is required")
    _check_schema(definition.parameters_validator, values, problems)
    for rule in definition.rules:
        _check_rule(rule, values, problems)
    unknown = [str(name) for name in raw if name not in properties]
    for name in unknown:
        problems.add(name, f"unknown parameter; allowed: {', '.join(properties)}")
    if problems.errors:
        order = {name: position for position, name in enumerate(properties)}
        ranked = sorted(problems.errors, key=lambda error: order.get(error["field"], len(order)))
        raise InvalidParametersError(ranked)
    return values


class _Problems:
    """The errors found so far, and which fields already have one."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.fields: set[str] = set()

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field=field, message=message))
        self.fields.add(field)


def _check_schema(
    validator: Draft202012Validator, values: Mapping[str, Any], problems: _Problems
) -> None:
    coerced_wrongly = set(problems.fields)
    for error in validator.iter_errors(values):
        # ``required`` is reported above with the field's name, which jsonschema only embeds
        # in its message text.
        if error.validator == "required":
            continue
        path = list(error.absolute_path)
        field = str(path[0]) if path else ""
        if field in coerced_wrongly:
            continue
        message = describe(error)
        if len(path) > 1:
            message = f"item {int(path[1]) + 1}: {message}"
        problems.add(field, message)


def _check_rule(rule: OrderingRule, values: Mapping[str, Any], problems: _Problems) -> None:
    # A rule compares two valid numbers; if either is missing or already wrong, the field's
    # own error is the useful one.
    if rule.lower not in values or rule.upper not in values:
        return
    if {rule.lower, rule.upper} & problems.fields:
        return
    lower, upper = values[rule.lower], values[rule.upper]
    if upper > lower or (rule.allow_equal and upper == lower):
        return
    relation = "greater than or equal to" if rule.allow_equal else "greater than"
    problems.add(
        rule.upper,
        f"must be {relation} {rule.lower} ({echo(lower)}), got {echo(upper)}",
    )

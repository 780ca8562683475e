"""Load-time checks of a workflow's parameter schema and command template.

A definition is data shipped with the code; these checks make a typo in it fail when the
catalogue loads rather than when a user submits a job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gridgate.workflows.placeholders import PYTHON_PLACEHOLDER, find_placeholders

SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
"""Parameter types a form can express and a command line can carry."""

NUMERIC_TYPES = frozenset({"integer", "number"})

# Parameter names become placeholders (``\w+``) and form field names; keep them plain.
_PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_parameter_schema(schema: Mapping[str, Any]) -> None:
    """Check that ``schema`` is a JSON Schema gridgate can validate, coerce and render.

    Parameters
    ----------
    schema
        The ``parameters`` member of a definition.

    Raises
    ------
    ValueError
        Naming the first problem found.
    """
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"parameters is not a valid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise ValueError("parameters must have type: object")
    if schema.get("additionalProperties") is not False:
        raise ValueError("parameters must have additionalProperties: false")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise ValueError("parameters must declare at least one property")
    for name, subschema in properties.items():
        _check_property(name, subschema)
    for name in schema.get("required", []):
        if name not in properties:
            raise ValueError(f"required parameter {name!r} is not a property")


def _check_property(name: str, subschema: Any) -> None:
    if not _PARAMETER_NAME.match(name) or name == PYTHON_PLACEHOLDER:
        raise ValueError(f"parameter name {name!r} must match [a-z][a-z0-9_]* and not be 'python'")
    if not isinstance(subschema, dict):
        raise ValueError(f"parameter {name!r}: schema must be an object")
    for member in ("title", "description"):
        if not isinstance(subschema.get(member), str) or not subschema[member].strip():
            raise ValueError(f"parameter {name!r}: needs a non-empty {member}")
    kind = subschema.get("type")
    if kind == "array":
        items = subschema.get("items")
        if not isinstance(items, dict) or items.get("type") not in SCALAR_TYPES:
            raise ValueError(f"parameter {name!r}: array items need a scalar type")
    elif kind not in SCALAR_TYPES:
        raise ValueError(f"parameter {name!r}: type must be one of {sorted(SCALAR_TYPES)} or array")
    if "default" in subschema and not Draft202012Validator(subschema).is_valid(
        subschema["default"]
    ):
        raise ValueError(f"parameter {name!r}: default {subschema['default']!r} is invalid")


def check_command(command: Iterable[str], schema: Mapping[str, Any]) -> None:
    """Check that every placeholder in ``command`` always has a value.

    Parameters
    ----------
    command
        The argv template.
    schema
        The parameter schema, already checked by :func:`check_parameter_schema`.

    Raises
    ------
    ValueError
        If a placeholder names no parameter, or a parameter that may be left unset.
    """
    properties: Mapping[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    for name in sorted(find_placeholders(command) - {PYTHON_PLACEHOLDER}):
        if name not in properties:
            raise ValueError(f"command placeholder {{{name}}} names no parameter")
        if name not in required and "default" not in properties[name]:
            raise ValueError(f"command placeholder {{{name}}} needs a required or defaulted value")


def check_tasks_from(name: str, schema: Mapping[str, Any]) -> None:
    """Check that parameter ``name`` can give a bounded, positive number of tasks.

    Parameters
    ----------
    name
        The ``tasks_from`` member of the execution block.
    schema
        The parameter schema.

    Raises
    ------
    ValueError
        If the parameter is missing, not an integer, or not bounded to ``1..maximum``.
    """
    subschema = schema["properties"].get(name)
    if subschema is None:
        raise ValueError(f"tasks_from names no parameter: {name!r}")
    if subschema.get("type") != "integer":
        raise ValueError(f"tasks_from parameter {name!r} must be an integer")
    # An unbounded task count would let one request fan out without limit.
    if subschema.get("minimum", 0) < 1 or "maximum" not in subschema:
        raise ValueError(f"tasks_from parameter {name!r} needs minimum >= 1 and a maximum")
    if "default" not in subschema and name not in schema.get("required", []):
        raise ValueError(f"tasks_from parameter {name!r} needs a default or must be required")


def check_numeric_parameter(name: str, schema: Mapping[str, Any]) -> None:
    """Check that ``name`` is an integer or number parameter (used by ordering rules).

    Parameters
    ----------
    name
        A parameter name.
    schema
        The parameter schema.

    Raises
    ------
    ValueError
        If it is not.
    """
    subschema = schema["properties"].get(name)
    if subschema is None or subschema.get("type") not in NUMERIC_TYPES:
        raise ValueError(f"rule names {name!r}, which is not a numeric parameter")


def check_output_pattern(pattern: str) -> None:
    """Check that an output glob stays inside the task's working directory.

    Parameters
    ----------
    pattern
        A glob such as ``"run*.simtel.json"``.

    Raises
    ------
    ValueError
        If the pattern is empty, absolute or climbs out with ``..``.
    """
    path = PurePosixPath(pattern)
    if not pattern.strip() or path.is_absolute() or ".." in path.parts or "\\" in pattern:
        raise ValueError(f"output pattern {pattern!r} must be relative to the working directory")

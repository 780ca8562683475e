"""Plain-language messages for JSON Schema validation errors.

jsonschema's own messages quote the whole offending value; a 10 MB string would come back in
the response. These messages quote at most a short excerpt.
"""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError

from gridgate.workflows.errors import echo

_FALLBACK_LIMIT = 200


def describe(error: ValidationError) -> str:
    """Say what is wrong with a value, without naming the field.

    Parameters
    ----------
    error
        One error from ``Draft202012Validator.iter_errors``.

    Returns
    -------
    str
        A message such as ``"must be at most 1000, got 5000"``.
    """
    keyword: str = error.validator
    limit: Any = error.validator_value
    got = echo(error.instance)
    templates = {
        "type": f"must be of type {_listing(limit)}, got {got}",
        "minimum": f"must be at least {limit}, got {got}",
        "maximum": f"must be at most {limit}, got {got}",
        "exclusiveMinimum": f"must be greater than {limit}, got {got}",
        "exclusiveMaximum": f"must be less than {limit}, got {got}",
        "enum": f"must be one of {_listing(limit)}, got {got}",
        "const": f"must be {limit!r}, got {got}",
        "minLength": f"must be at least {limit} characters long",
        "maxLength": f"must be at most {limit} characters long",
        "pattern": f"must match the pattern {limit}, got {got}",
        "minItems": f"must have at least {limit} items",
        "maxItems": f"must have at most {limit} items",
        "uniqueItems": "items must all differ",
    }
    message = templates.get(keyword)
    return message if message is not None else str(error.message)[:_FALLBACK_LIMIT]


def _listing(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)

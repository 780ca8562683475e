"""Placeholders in a schedule's parameters: ``{nominal_time}`` and ``{previous_success_time}``.

A fixed substitution, never code: a string value may name these two placeholders in braces,
and ``{{`` / ``}}`` stand for literal braces. Anything else in braces (another name, an
attribute, an index, a format or conversion) is refused when the schedule is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from string import Formatter
from typing import Any

from gridgate.gateway.exceptions import UnknownPlaceholderError

PLACEHOLDERS = ("nominal_time", "previous_success_time")


def check_placeholders(parameters: Mapping[str, Any]) -> None:
    """Refuse parameters whose placeholders the template syntax does not have."""
    errors = []
    for name, value in parameters.items():
        if not isinstance(value, str):
            continue
        try:
            _substitute(value, dict.fromkeys(PLACEHOLDERS, ""))
        except ValueError as exc:
            errors.append({"field": f"parameters.{name}", "message": str(exc)})
    if errors:
        raise UnknownPlaceholderError(
            "Parameters may use only {nominal_time} and {previous_success_time}; write {{ and"
            " }} for literal braces.",
            errors=errors,
        )


def render_parameters(
    parameters: Mapping[str, Any], nominal_time: datetime, previous_success: datetime | None
) -> dict[str, Any]:
    """The parameters of one firing, placeholders replaced (ISO 8601, UTC; empty if none)."""
    values = {
        "nominal_time": nominal_time.isoformat(),
        "previous_success_time": previous_success.isoformat() if previous_success else "",
    }
    return {
        name: _substitute(value, values) if isinstance(value, str) else value
        for name, value in parameters.items()
    }


def _substitute(text: str, values: Mapping[str, str]) -> str:
    parts = []
    for literal, field, spec, conversion in Formatter().parse(text):
        parts.append(literal)
        if field is None:
            continue
        if field not in values or spec or conversion:
            raise ValueError(f"unknown placeholder {{{field}}}")
        parts.append(values[field])
    return "".join(parts)


__all__ = ["PLACEHOLDERS", "check_placeholders", "render_parameters"]

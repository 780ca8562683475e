"""Turn the strings of HTML and UWS form posts into the JSON types a schema expects.

JSON-typed values pass through unchanged except for two normalisations: an integral float
for an integer parameter becomes an ``int`` (so ``3.0`` renders as ``3``), and non-finite
floats are refused (JSON Schema bounds do not catch NaN, which compares false to everything).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from gridgate.workflows.errors import echo

_INTEGER = re.compile(r"^[+-]?\d+$", re.ASCII)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_TRUE = frozenset({"true", "1", "yes", "on"})  # "on" is what an HTML checkbox posts
_FALSE = frozenset({"false", "0", "no", "off"})


class CoercionError(ValueError):
    """A value cannot be read as the type its schema declares; the message says why."""


def is_blank_for(subschema: Mapping[str, Any], value: Any) -> bool:
    """Tell whether ``value`` is an empty form field for a non-string parameter.

    An HTML form posts ``""`` for an empty number box; that means "not given", so the
    schema default applies. For a string parameter ``""`` is a real value.

    Parameters
    ----------
    subschema
        The parameter's schema.
    value
        The raw value.

    Returns
    -------
    bool
        True if the value should be treated as absent.
    """
    return subschema.get("type") != "string" and isinstance(value, str) and not value.strip()


def coerce_value(subschema: Mapping[str, Any], value: Any) -> Any:
    """Coerce one raw parameter value to the type its schema declares.

    Parameters
    ----------
    subschema
        The parameter's schema (``type`` one of string, integer, number, boolean, array).
    value
        A string from a form, or a JSON-typed value.

    Returns
    -------
    Any
        The coerced value; a value of the wrong JSON type is returned unchanged for the
        schema validator to report.

    Raises
    ------
    CoercionError
        If a string cannot be read as the declared type.
    """
    kind = subschema.get("type")
    if kind == "array":
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            items = subschema.get("items", {})
            return [_coerce_item(items, position, item) for position, item in enumerate(value)]
        return value
    return _coerce_scalar(kind, value)


def _coerce_item(items: Mapping[str, Any], position: int, item: Any) -> Any:
    try:
        return _coerce_scalar(items.get("type"), item)
    except CoercionError as exc:
        raise CoercionError(f"item {position + 1}: {exc}") from None


def _coerce_scalar(kind: Any, value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise CoercionError("must be a finite number")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return value
    # A NUL byte cannot travel in an argv element; refuse it here rather than at exec time.
    if "\x00" in value:
        raise CoercionError("must not contain NUL characters")
    text = value.strip()
    if kind == "integer":
        return _parse_integer(text)
    if kind == "number":
        return _parse_number(text)
    if kind == "boolean":
        return _parse_boolean(text)
    return value


def _parse_integer(text: str) -> int:
    if not _INTEGER.match(text):
        raise CoercionError(f"must be an integer, got {echo(text)}")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise CoercionError("must be an integer of reasonable size") from None


def _parse_number(text: str) -> int | float:
    if _INTEGER.match(text):
        return _parse_integer(text)
    if not _NUMBER.match(text):
        raise CoercionError(f"must be a number, got {echo(text)}")
    number = float(text)
    if not math.isfinite(number):
        raise CoercionError("must be a finite number")
    return number


def _parse_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CoercionError(f"must be true or false, got {echo(text)}")

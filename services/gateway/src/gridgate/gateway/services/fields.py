"""What a client's free text must be to be kept: bounded, and writable as UWS XML.

A value is refused at the door rather than stored and failed on later: a character XML 1.0
cannot carry would make every later XML rendering of the job (and of its owner's job list)
impossible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gridgate.gateway.exceptions import InvalidJobFieldError, UnrepresentableTextError

MAX_RUN_ID = 255
"""The ``run_id`` column is ``String(255)``."""
MAX_NAME = 255
"""Workflow, version, facility, VO and group names: catalogue ids, never this long."""
MAX_TEXT_PARAMETER = 4096
"""Longest string parameter value (workflow schemas may set a lower ``maxLength``)."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def check_text(field: str, value: str, max_chars: int) -> None:
    """Refuse a value longer than ``max_chars`` or with a character XML 1.0 cannot carry.

    Raises
    ------
    InvalidJobFieldError
        The value is too long.
    UnrepresentableTextError
        The value holds a character outside XML 1.0's ``Char`` production.
    """
    if len(value) > max_chars:
        raise InvalidJobFieldError(
            f"{field} is {len(value)} characters long; at most {max_chars} are accepted.",
            errors=[{"field": field, "message": f"longer than {max_chars} characters"}],
        )
    bad = _NOT_XML.search(value)
    if bad is not None:
        raise UnrepresentableTextError(
            f"{field} holds the character U+{ord(bad.group()):04X} at position {bad.start()}, "
            "which XML 1.0 cannot carry (control characters other than tab, newline and "
            "carriage return; U+FFFE; U+FFFF; lone surrogates).",
            errors=[{"field": field, "message": f"character U+{ord(bad.group()):04X}"}],
        )


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Apply :func:`check_text` to every parameter name and every string in a value."""
    for name, value in parameters.items():
        check_text("parameter name", str(name), MAX_NAME)
        for text in _strings(value):
            check_text(str(name), text, MAX_TEXT_PARAMETER)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []

"""Helpers shared by the stand-in programs (stdlib only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TASK_INDEX_ENV = "GRIDGATE_TASK_INDEX"


def task_index() -> int:
    """Return this task's index from ``GRIDGATE_TASK_INDEX`` (0 when unset).

    Returns
    -------
    int
        The index, ``>= 0``.

    Raises
    ------
    SystemExit
        If the variable is set but is not a non-negative integer.
    """
    text = os.environ.get(TASK_INDEX_ENV, "0")
    if not text.isdigit():
        raise SystemExit(f"{TASK_INDEX_ENV} must be a non-negative integer, got {text!r}")
    return int(text)


def parse_bool(text: str) -> bool:
    """Read ``true``/``false`` (as rendered by gridgate) for argparse.

    Parameters
    ----------
    text
        The option's value.

    Returns
    -------
    bool
        The boolean.

    Raises
    ------
    ValueError
        For any other text; argparse turns it into a usage error.
    """
    lowered = text.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise ValueError(text)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON, via a temporary file so no half file remains.

    Parameters
    ----------
    path
        Destination file.
    document
        JSON-serialisable content.
    """
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def power_law(u: float, low: float, high: float, slope: float) -> float:
    """Map a uniform number in ``[0, 1)`` to an energy drawn from ``E^slope`` on ``[low, high]``.

    Parameters
    ----------
    u
        Uniform random number.
    low, high
        Energy range, ``0 < low <= high``.
    slope
        Power-law index, e.g. ``-2``.

    Returns
    -------
    float
        The energy.
    """
    if low == high:
        return low
    if abs(slope + 1.0) < 1e-12:
        return float(low * (high / low) ** u)
    exponent = slope + 1.0
    a, b = low**exponent, high**exponent
    return float((a + u * (b - a)) ** (1.0 / exponent))

"""Semantic versions of workflow definitions.

Definitions use plain ``MAJOR.MINOR.PATCH``: a catalogue entry is a released, immutable
definition, so pre-release and build tags have no use here and are refused at load.
"""

from __future__ import annotations

import re

VERSION_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
_VERSION = re.compile(VERSION_PATTERN)


def version_key(version: str) -> tuple[int, int, int]:
    """Return the sort key of a ``MAJOR.MINOR.PATCH`` version.

    Parameters
    ----------
    version
        A version such as ``"1.10.0"``.

    Returns
    -------
    tuple of int
        ``(major, minor, patch)``, so ``"1.10.0"`` sorts after ``"1.9.0"``.

    Raises
    ------
    ValueError
        If ``version`` is not ``MAJOR.MINOR.PATCH``.
    """
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch

"""Rucio data identifiers (DIDs): ``scope:name``."""

from __future__ import annotations

import re
from dataclasses import dataclass

SCOPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,24}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-/+]{1,250}$")


class InvalidDidError(ValueError):
    """Text that is not a ``scope:name`` DID gridgate accepts."""


@dataclass(frozen=True, order=True)
class Did:
    """A data identifier.

    Parameters
    ----------
    scope
        The Rucio scope, e.g. ``user.alice`` or ``cta``.
    name
        The name inside the scope; it may contain ``/``.
    """

    scope: str
    name: str

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"

    @property
    def file_name(self) -> str:
        """The last path element of the name: what a file is called on a worker."""
        return self.name.rsplit("/", 1)[-1]

    @classmethod
    def parse(cls, text: str) -> Did:
        """Parse ``scope:name``.

        Raises
        ------
        InvalidDidError
            If the text is not ``scope:name`` with a valid scope and name.
        """
        scope, sep, name = text.strip().partition(":")
        if not sep:
            raise InvalidDidError(f"{text!r} is not a DID: write scope:name")
        if not SCOPE_PATTERN.match(scope):
            raise InvalidDidError(f"{scope!r} is not a valid Rucio scope")
        if not NAME_PATTERN.match(name) or any(p in ("", ".", "..") for p in name.split("/")[1:]):
            raise InvalidDidError(f"{name!r} is not a valid Rucio name")
        if name.rsplit("/", 1)[-1] in ("", ".", ".."):
            raise InvalidDidError(f"{name!r} does not end in a file name")
        return cls(scope, name)

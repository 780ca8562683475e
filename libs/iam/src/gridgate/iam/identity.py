"""Who a validated token speaks for: the user (``sub``), their VOs and groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gridgate.core.errors import AuthenticationError


@dataclass(frozen=True)
class Identity:
    """The authenticated user.

    ``groups`` are normalised to IAM's form without a leading slash (``cta/production``);
    the VO of a group is its first path element.
    """

    sub: str
    groups: tuple[str, ...] = ()
    name: str | None = None
    expires_at: float = 0.0
    vos: tuple[str, ...] = field(default=())

    def in_vo(self, vo: str) -> bool:
        return vo in self.vos


def _group_list(claims: Mapping[str, Any], key: str) -> list[str]:
    value = claims.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """Build the identity from validated claims (``groups`` and/or ``wlcg.groups``)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError("The token has no subject ('sub').")
    ordered: dict[str, None] = {}
    for raw in _group_list(claims, "wlcg.groups") + _group_list(claims, "groups"):
        group = raw.strip("/")
        if group:
            ordered[group] = None
    groups = tuple(ordered)
    vos = tuple(dict.fromkeys(g.split("/", 1)[0] for g in groups))
    name = claims.get("preferred_username") or claims.get("name")
    return Identity(
        sub=sub,
        groups=groups,
        name=name if isinstance(name, str) else None,
        expires_at=float(claims.get("exp", 0)),
        vos=vos,
    )

"""What names a DiracX link, and its routes: everything of diracx-user-link that the auth
service needs whatever its mode, without the SQL stack behind the links (ADR 0019)."""

from __future__ import annotations

from dataclasses import dataclass

LINK_ROUTE = "/api/v1/diracx-links"
# what users call: the gateway's route, which relays to LINK_ROUTE here
USER_LINK_ROUTE = "/api/diracx-links"


@dataclass(frozen=True)
class LinkKey:
    sub: str
    vo: str
    group: str

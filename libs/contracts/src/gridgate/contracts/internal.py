"""The internal HTTP interface between workers and the gateway."""

from __future__ import annotations

from typing import Final

INTERNAL_TOKEN_HEADER: Final = "X-Gridgate-Internal-Token"  # noqa: S105 - a header name
"""Header carrying the shared secret on ``/internal`` routes (docs/adr/0002)."""

IN_FLIGHT_PATH: Final = "/internal/v1/in-flight"

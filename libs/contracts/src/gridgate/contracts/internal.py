"""The internal HTTP interface between workers and the gateway."""

from __future__ import annotations

from typing import Final

INTERNAL_TOKEN_HEADER: Final = "X-Gridgate-Internal-Token"  # noqa: S105 - a header name
"""Header carrying the shared secret on ``/internal`` routes (docs/adr/0002)."""

IN_FLIGHT_PATH: Final = "/internal/v1/in-flight"

JOB_OWNER_PATH: Final = "/internal/v1/jobs/{job_id}/owner"
"""The gateway says whose a job is; the auth service asks before handing out a proxy."""

CREDENTIAL_CHECK_PATH: Final = "/internal/v1/credential-checks"
JOB_PROXY_PATH: Final = "/internal/v1/proxies"

DIRACX_TOKEN_PATH: Final = "/internal/v1/diracx-tokens"  # noqa: S105 - a path
"""Workers: a DiracX access token of a live job's owner, or of gridgate's DiracX robot."""

"""Answers to the gateway's peeks at a running task's output (request-reply, not durable)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gridgate.core.errors import UsageError
from gridgate.dirac.facility import DiracFacility
from gridgate.localfacility import LocalFacility

if TYPE_CHECKING:
    # Annotations only: the official DiracX client loads when a DiracX facility is served.
    from gridgate.diracx.facility import DiracXFacility

PEEK_LIMIT = 65536
"""Most characters one peek returns: the end of the output, where a user looks first."""


class Peeker:
    """Reads what a task wrote so far: the local facility's files, DIRAC's stdout peek."""

    def __init__(
        self, local: LocalFacility, dirac: Mapping[str, DiracFacility | DiracXFacility]
    ) -> None:
        self.local = local
        self.dirac = dict(dirac)

    async def peek(self, *, facility: str, facility_job_id: str, stream: str) -> dict[str, Any]:
        if stream not in ("stdout", "stderr"):
            raise UsageError(f"no such stream {stream!r}")
        if facility == self.local.name:
            text = await asyncio.to_thread(self.local.tail, facility_job_id, stream, PEEK_LIMIT)
            return {"text": text, "source": "local"}
        if facility in self.dirac:
            if stream == "stderr":
                # DIRAC relays only stdout while a job runs; stderr comes with the sandbox.
                return {"text": "", "source": "dirac: stderr arrives with the output sandbox"}
            text = await self.dirac[facility].peek(facility_job_id)
            return {"text": text[-PEEK_LIMIT:], "source": "dirac peek"}
        raise UsageError(f"this monitor does not serve the facility {facility!r}")

"""UWS WAIT: block while a job is active, holding no database connection meanwhile.

A blocked request that kept its connection would take one from the pool for up to the WAIT
cap: a few users polling with WAIT would leave nothing for anyone else, and every request
would fail waiting for a connection. Each read here is a unit of work of its own, and the
blocking between two reads holds only an in-process event.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from gridgate.contracts.phases import Phase
from gridgate.core.clock import utcnow
from gridgate.gateway.exceptions import TooManyWaitsError
from gridgate.gateway.models.job import Job
from gridgate.gateway.models.phase_machine import ACTIVE_PHASES
from gridgate.gateway.services.jobs import JobService
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.services.policy import JobPolicy
from gridgate.iam.identity import Identity

RETRY_AFTER_S = 5
"""What a user over the cap of blocked WAITs is told to wait before asking again."""


class JobWaiter:
    """Reads a job, blocking first while it is active when the client asks to WAIT.

    Parameters
    ----------
    reading
        Opens a unit of work and gives its job service (closed, connection returned, after).
    notifier
        Wakes blocked requests when a job changes; caps blocked requests per user.
    policy
        The operator's WAIT cap.
    """

    def __init__(
        self,
        reading: Callable[[], AbstractAsyncContextManager[JobService]],
        notifier: PhaseNotifier,
        policy: JobPolicy,
    ) -> None:
        self.reading = reading
        self.notifier = notifier
        self.policy = policy

    async def read(self, identity: Identity, job_id: str) -> Job:
        async with self.reading() as jobs:
            return await jobs.get_job(identity, job_id)

    async def wait(
        self, identity: Identity, job_id: str, wait_s: int | None, phase: Phase | None
    ) -> Job:
        """The job, once it left ``phase`` (or changed phase), or after ``wait_s`` seconds.

        UWS 1.1 §2.2.1.1: a job outside the active phases (or not in the ``phase`` named)
        answers at once; ``wait_s`` below 0 is the longest wait the server allows, and any
        wait is capped at it.

        Raises
        ------
        TooManyWaitsError
            The user already holds the most blocked requests allowed (429, ``Retry-After``).
        """
        job = await self.read(identity, job_id)
        if wait_s is None:
            return job
        blocking = ACTIVE_PHASES & {phase} if phase is not None else ACTIVE_PHASES
        cap = self.policy.wait_cap_s
        timeout = cap if wait_s < 0 else min(wait_s, cap)
        if job.phase not in blocking or timeout == 0:
            return job
        if not self.notifier.may_block(identity.sub):
            raise TooManyWaitsError(
                "You already hold the most WAIT requests allowed at once; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        start_phase = job.phase
        deadline = utcnow() + timedelta(seconds=timeout)
        while (remaining := (deadline - utcnow()).total_seconds()) > 0:
            await self.notifier.wait(identity.sub, job_id, remaining)
            job = await self.read(identity, job_id)
            # On shutdown every WAIT is answered at once with the job as it is.
            if job.phase != start_phase or self.notifier.closing:
                break
        return job

"""The gateway's own rounds over jobs: destruction times, tombstones, idempotency keys,
expiring credentials, and jobs that stopped making progress."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import structlog

from gridgate.contracts import RESULTS_QUEUE, SUBMITTER_QUEUE, CancelJob, PurgeJob
from gridgate.contracts.events import CREDENTIAL_EXPIRING
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.core.clock import utcnow
from gridgate.gateway.models.job import Job
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.storage.idempotency import IdempotencyStore
from gridgate.observability import observe_stalled_job

log = structlog.get_logger(__name__)

GATEWAY = "gateway"


class Housekeeping:
    """Periodic work on jobs that no request or report starts. One commit per job."""

    def __init__(self, ledger: JobLedger, keys: IdempotencyStore) -> None:
        self.ledger = ledger
        self.jobs = ledger.jobs
        self.keys = keys
        self.policy = ledger.policy

    async def destroy_expired(self, limit: int = 100) -> int:
        """Honour destruction times: abort what still runs, remove the results, then archive
        or delete each job, as the operator's policy says."""
        now = utcnow()
        candidates = [job.id for job in await self.jobs.past_destruction(now, limit)]
        await self.ledger.rollback()
        done = 0
        for job_id in candidates:
            if await self.ledger.retrying(partial(self._destroy, job_id, now)):
                done += 1
        return done

    async def _destroy(self, job_id: str, now: datetime) -> bool:
        job = await self.jobs.get(job_id, for_update=True)
        if (
            job is None
            or job.phase == Phase.ARCHIVED
            or job.destruction is None
            or job.destruction > now
        ):
            await self.ledger.rollback()
            return False
        await self.ledger.claim(job)
        detail = "destruction time reached"
        outbox = self.ledger.outbox
        if job.phase not in FINAL_PHASES:
            await self.ledger.transition(job, Phase.ABORTED, GATEWAY, detail, now)
            outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
        if any(t.facility_job_id for t in job.tasks):
            outbox.command(
                SUBMITTER_QUEUE,
                PurgeJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
        outbox.command(RESULTS_QUEUE, self.ledger.purge_results(job, "destroyed"), at=now)
        if self.policy.retention == "delete":
            await self.ledger.forget(job, now)
        else:
            await self.ledger.transition(
                job, Phase.ARCHIVED, GATEWAY, f"{detail}: results removed", now
            )
        await self.ledger.commit()
        self.ledger.notify(job.id)
        log.info("job destroyed", job_id=job.id, policy=self.policy.retention)
        return True

    async def prune(self) -> int:
        """Forget deleted jobs whose facility work is over, and idempotency keys past their
        time."""
        now = utcnow()
        pruned = await self.jobs.prune_tombstones(
            now - timedelta(seconds=self.policy.facility_grace_s)
        )
        pruned += await self.keys.prune(now - timedelta(seconds=self.policy.idempotency_ttl_s))
        pruned += await self.ledger.outbox.store.journal.prune(
            now - timedelta(seconds=self.policy.event_retention_s)
        )
        await self.ledger.commit()
        return pruned

    async def warn_expiring_credentials(self, warning: timedelta) -> int:
        """Tell the owners of live jobs whose credential runs out within ``warning``, once."""
        now = utcnow()
        before = now + warning
        candidates = [job.id for job in await self.jobs.expiring_credentials(before)]
        await self.ledger.rollback()
        warned = 0
        for job_id in candidates:
            if await self.ledger.retrying(partial(self._warn_expiring, job_id, before, now)):
                warned += 1
        return warned

    async def _warn_expiring(self, job_id: str, before: datetime, now: datetime) -> bool:
        # Read again and claim: the job may have been deleted, ended or warned since the
        # listing (on SQLite a write to a deleted job fails its foreign key).
        job = await self.jobs.get(job_id, for_update=True)
        if (
            job is None
            or job.phase in FINAL_PHASES
            or job.credential_warned
            or job.credential_expires_at is None
            or job.credential_expires_at >= before
        ):
            await self.ledger.rollback()
            return False
        await self.ledger.claim(job)
        detail = (
            f"the job's credential runs out at {job.credential_expires_at.isoformat()};"
            " renew your long-lived credential or the job may fail"
        )
        self.jobs.add_history(job.id, at=now, source=GATEWAY, detail=detail)
        await self.jobs.update(job.id, credential_warned=True)
        self.ledger.event(job, job.phase, None, GATEWAY, detail, now, what=CREDENTIAL_EXPIRING)
        await self.ledger.commit()
        return True

    async def watch_stalled(self, limit: int = 200) -> int:
        """Look at active jobs with no recorded change for longer than the policy's bound.

        A submission that never came back (no facility id on any task) or a collection that
        never reported (an outcome but no final phase) is sent again, at most
        ``max_redrives`` times, then the job goes to ERROR with the reason; the commands are
        idempotent, so sending one again never runs a task twice. A job that waits on its
        facility gets a stall reason its owner sees as ``pendingReason``. Returns how many
        jobs were acted on.
        """
        now = utcnow()
        before = now - timedelta(seconds=self.policy.stall_after_s)
        candidates = [job.id for job in await self.jobs.stalled(before, limit)]
        await self.ledger.rollback()
        acted = 0
        for job_id in candidates:
            if await self.ledger.retrying(partial(self._unstall, job_id, before)):
                acted += 1
        return acted

    async def _unstall(self, job_id: str, before: datetime) -> bool:
        job = await self.jobs.get(job_id, for_update=True)
        if job is None or job.phase not in (Phase.QUEUED, Phase.EXECUTING):
            await self.ledger.rollback()
            return False
        if job.updated_at >= before:
            await self.ledger.rollback()
            return False
        now = utcnow()
        since = job.updated_at.isoformat(timespec="seconds")
        if job.finished_outcome is not None:
            action = await self._redrive(job, now, "collection of the results", collect=True)
        elif job.phase == Phase.QUEUED and not any(t.facility_job_id for t in job.tasks):
            action = await self._redrive(job, now, "submission to the facility", collect=False)
        else:
            reason = f"no change reported by the facility {job.facility} since {since}"
            if job.stall_reason == reason:
                await self.ledger.rollback()
                return False
            await self.ledger.claim(job)
            # The clock of progress is left alone: waiting on a facility is not progress.
            await self.jobs.update(job.id, stall_reason=reason)
            self.jobs.add_history(job.id, at=now, source=GATEWAY, detail=reason)
            action = "noticed"
        await self.ledger.commit()
        self.ledger.notify(job.id)
        observe_stalled_job(action)
        log.warning("stalled job", job_id=job.id, action=action, since=since)
        return True

    async def _redrive(self, job: Job, now: datetime, what: str, *, collect: bool) -> str:
        await self.ledger.claim(job)
        if job.redrives >= self.policy.max_redrives:
            reason = (
                f"internal: the {what} did not come back after {job.redrives + 1} attempts;"
                " an operator was alerted"
            )
            await self.jobs.update(job.id, error_type="fatal", error_message=reason)
            await self.ledger.transition(job, Phase.ERROR, GATEWAY, reason, now)
            return "failed"
        attempt = job.redrives + 1
        reason = f"the {what} did not come back; sent again (attempt {attempt + 1})"
        await self.jobs.update(job.id, redrives=attempt, stall_reason=reason, updated_at=now)
        self.jobs.add_history(job.id, at=now, source=GATEWAY, detail=reason)
        if collect:
            command = self.ledger.collect_command(job)
            self.ledger.outbox.command(RESULTS_QUEUE, command, at=now)
            return "recollected"
        definition = self.ledger.workflows.get(job.workflow_id, job.workflow_version)
        submit = await self.ledger.submit_command(job, definition)
        self.ledger.outbox.command(SUBMITTER_QUEUE, submit, at=now)
        return "resubmitted"


__all__ = ["Housekeeping"]

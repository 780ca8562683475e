"""What workers report about jobs, turned into job state: submissions, observations of the
facility, staged results and failures.

Reports come at least once, possibly several at a time for one job (the gateway consumes
with a prefetch, and may run as several replicas), and a late report may be older than what
is recorded. Each method is one unit of work that claims the job before writing
(:class:`~gridgate.gateway.services.ledger.JobLedger`), and is idempotent: a redelivered or
stale report changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from gridgate.contracts import (
    RESULTS_QUEUE,
    SUBMITTER_QUEUE,
    CancelJob,
    ImageBuildStarted,
    ImageResolved,
    JobFailureReported,
    JobStateObserved,
    JobSubmitted,
    PurgeResults,
    ResultsStaged,
    TaskState,
)
from gridgate.contracts.events import RESULTS_STAGED
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.core.clock import utcnow
from gridgate.core.crashpoints import crash_point
from gridgate.gateway.models.job import Job, ResultRecord, TaskRecord
from gridgate.gateway.models.phase_machine import aggregate_phase, is_legal
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.storage.jobs import StaleJobError

log = structlog.get_logger(__name__)

MONITOR = "monitor"


def _observation_news(
    job: Job | None, report: JobStateObserved
) -> list[tuple[TaskRecord, TaskState]]:
    """The tasks an observation tells something new about; none for a job that is gone,
    final or finished (its results are being collected)."""
    if job is None or job.phase in FINAL_PHASES or job.finished_outcome is not None:
        return []
    by_index = {t.index: t for t in job.tasks}
    return [
        (by_index[state.index], state)
        for state in report.tasks
        if state.index in by_index and _is_news(by_index[state.index], state, report.observed_at)
    ]


def _is_news(task: TaskRecord, state: TaskState, observed_at: datetime) -> bool:
    """Whether an observation of a task says something new and is not older than the
    recorded one; a task that ended never goes back to running."""
    if task.observed_at is not None and observed_at <= task.observed_at:
        return False
    if task.phase in FINAL_PHASES and state.phase not in FINAL_PHASES:
        return False
    return (task.phase, task.facility_status, task.exit_code, task.detail) != (
        state.phase,
        state.facility_status,
        state.exit_code,
        state.detail,
    )


def _submission_news(job: Job | None, report: JobSubmitted) -> list[tuple[TaskRecord, str]] | None:
    """The tasks a submission gives a facility id they do not have yet; ``None``: nothing to
    write (an aborted job is written all the same, so that its cancellation goes out)."""
    if job is None:
        return None
    moved = [
        (task, facility_job_id)
        for task, facility_job_id in zip(job.tasks, report.facility_job_ids, strict=False)
        if task.facility_job_id != facility_job_id
    ]
    if not moved and job.phase != Phase.ABORTED:
        return None
    return moved


class ReportService:
    """Applies worker reports to jobs; the gateway stays the single writer of job state."""

    def __init__(self, ledger: JobLedger) -> None:
        self.ledger = ledger
        self.jobs = ledger.jobs

    async def record_submission(self, report: JobSubmitted) -> None:
        await self.ledger.retrying(lambda: self._record_submission(report))

    async def record_observation(self, report: JobStateObserved) -> None:
        await self.ledger.retrying(lambda: self._record_observation(report))

    async def record_results(self, report: ResultsStaged) -> None:
        await self.ledger.retrying(lambda: self._record_results(report))

    async def record_failure(self, report: JobFailureReported) -> None:
        await self.ledger.retrying(lambda: self._record_failure(report))

    async def record_image(self, report: ImageBuildStarted | ImageResolved) -> None:
        await self.ledger.retrying(lambda: self._record_image(report))

    async def _record_image(self, report: ImageBuildStarted | ImageResolved) -> None:
        """A build started (the job waits for it: its pendingReason says so) or is still going
        (a repeat of the same report), or the image is resolved (recorded, pinned by digest,
        for jobInfo and the results' provenance)."""
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None or job.phase in FINAL_PHASES:
            await self.ledger.rollback()
            return
        if isinstance(report, ImageBuildStarted):
            reason = (
                f"building image {report.repository}:{report.tag} "
                "(no image of these build arguments yet)"
            )
            if job.image is not None:
                await self.ledger.rollback()  # overtaken by the resolution
                return
            if job.stall_reason == reason:
                # A repeat: the submitter's heartbeat (or a redelivery), so the build is alive.
                # The job's clock of progress moves, which keeps the stall watch from sending
                # it again and overwriting its reason; nothing new for its history.
                await self.ledger.claim(job, updated_at=utcnow())
                await self.ledger.commit()
                return
            values: dict[str, object] = {"stall_reason": reason}
            detail = reason
        else:
            image = report.image.model_dump(mode="json")
            if job.image is not None and job.image.get("digest") == report.image.digest:
                # A redelivered SubmitJob selects the image its first delivery built: the
                # record of the build stands.
                await self.ledger.rollback()
                return
            values = {"image": image, "stall_reason": None}
            verb = "built" if report.image.built else "selected"
            detail = f"image {verb}: {report.image.reference}"
        await self.ledger.claim(job)
        now = utcnow()
        await self.jobs.update(job.id, updated_at=now, **values)
        self.jobs.add_history(job.id, at=now, source="submitter", detail=detail)
        await self.ledger.commit()
        self.ledger.notify(job.id)

    async def _record_submission(self, report: JobSubmitted) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        moved = _submission_news(job, report)
        if job is None or moved is None:
            await self.ledger.rollback()
            return
        await self.ledger.claim(job)
        await self._write_submission(job, report, moved, utcnow())
        await self.ledger.commit()
        self.ledger.notify(job.id)

    async def record_submissions(self, reports: Sequence[JobSubmitted]) -> None:
        """Apply submissions of distinct jobs in one unit of work (a bulk DIRAC submission's
        reports, taken together with the consumer's prefetch), each as
        :meth:`record_submission` applies it; all or nothing, as
        :meth:`record_observations`."""
        assert len({r.job_id for r in reports}) == len(reports), "one submission per job"
        await self.ledger.retrying(lambda: self._record_submissions(reports))

    async def _record_submissions(self, reports: Sequence[JobSubmitted]) -> None:
        jobs = await self.jobs.get_many([r.job_id for r in reports], for_update=True)
        planned: list[tuple[Job, JobSubmitted, list[tuple[TaskRecord, str]]]] = []
        for report in reports:
            job = jobs.get(report.job_id)
            moved = _submission_news(job, report)
            if job is not None and moved is not None:
                planned.append((job, report, moved))
        if not planned:
            await self.ledger.rollback()
            return
        await self._claim_all([job for job, _, _ in planned])
        now = utcnow()
        for job, report, moved in planned:
            await self._write_submission(job, report, moved, now)
        await self.jobs.flush_updates()
        crash_point("submissions-batch-written")
        await self.ledger.commit()
        for job, _, _ in planned:
            self.ledger.notify(job.id)

    async def _claim_all(self, jobs: list[Job], **values: Any) -> None:
        """Claim every job of a batch in one statement (``values`` written with the claim),
        or raise :class:`StaleJobError` so the whole batch runs again on fresh state; then
        defer the batch's further updates to one statement per kind."""
        claimed = await self.ledger.claim_many(jobs, **values)
        for job in jobs:
            if job.id not in claimed:
                raise StaleJobError(job.id)
        self.jobs.defer_updates()

    async def _write_submission(
        self, job: Job, report: JobSubmitted, moved: list[tuple[TaskRecord, str]], now: datetime
    ) -> None:
        """Write what a claimed job's submission says: its tasks' facility ids and history;
        an aborted job's cancellation goes to the facility again."""
        for task, facility_job_id in moved:
            await self.jobs.update_task(job.id, task.index, facility_job_id=facility_job_id)
        if moved:
            if job.phase not in FINAL_PHASES:
                await self.jobs.update(job.id, updated_at=now, stall_reason=None)
            shown = ", ".join(report.facility_job_ids[:5])
            more = len(report.facility_job_ids) - 5
            self.jobs.add_history(
                job.id,
                at=now,
                source="submitter",
                detail=f"submitted to {report.facility} as {shown}"
                + (f" (+{more} more)" if more > 0 else ""),
            )
        if job.phase == Phase.ABORTED:
            # The abort may have overtaken the submission: make sure the facility stops it.
            self.ledger.outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )

    async def _record_observation(self, report: JobStateObserved) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        news = _observation_news(job, report)
        if job is None or not news:
            # Nothing new, or older than what is recorded: a duplicate or a late report.
            await self.ledger.rollback()
            return
        now = utcnow()
        await self.ledger.claim(job, updated_at=now, stall_reason=None)
        await self._apply_observation(job, report, news, now)
        await self.ledger.commit()
        self.ledger.notify(job.id)

    async def record_observations(self, reports: Sequence[JobStateObserved]) -> None:
        """Apply observations of distinct jobs in one unit of work (a batch the consumer
        took with its prefetch): one round trip per kind of statement instead of about ten
        per observation, with each job claimed as :meth:`record_observation` claims it.

        The batch is all or nothing: a claim lost to another writer rolls the whole batch
        back and runs it again on fresh state, as a single unit of work would be."""
        assert len({r.job_id for r in reports}) == len(reports), "one observation per job"
        await self.ledger.retrying(lambda: self._record_observations(reports))

    async def _record_observations(self, reports: Sequence[JobStateObserved]) -> None:
        jobs = await self.jobs.get_many([r.job_id for r in reports], for_update=True)
        planned: list[tuple[Job, JobStateObserved, list[tuple[TaskRecord, TaskState]]]] = []
        for report in reports:
            job = jobs.get(report.job_id)
            news = _observation_news(job, report)
            if job is not None and news:
                planned.append((job, report, news))
        if not planned:
            await self.ledger.rollback()
            return
        now = utcnow()
        await self._claim_all([job for job, _, _ in planned], updated_at=now, stall_reason=None)
        for job, report, news in planned:
            await self._apply_observation(job, report, news, now)
        await self.jobs.flush_updates()
        crash_point("observations-batch-written")
        await self.ledger.commit()
        for job, _, _ in planned:
            self.ledger.notify(job.id)

    async def _apply_observation(
        self,
        job: Job,
        report: JobStateObserved,
        news: list[tuple[TaskRecord, TaskState]],
        now: datetime,
    ) -> None:
        """Write what a claimed job's observation says: tasks, history, phase and events."""
        for task, state in news:
            task.phase, task.exit_code, task.detail = state.phase, state.exit_code, state.detail
            task.facility_status = state.facility_status
            await self.jobs.update_task(
                job.id,
                state.index,
                phase=state.phase.value,
                facility_status=state.facility_status,
                exit_code=state.exit_code,
                detail=state.detail,
                started_at=state.started_at or task.started_at,
                ended_at=state.ended_at,
                facility_job_id=state.facility_job_id,
                observed_at=report.observed_at,
            )
            label = f"task {state.index}: " if job.task_count > 1 else ""
            self.jobs.add_history(
                job.id,
                at=report.observed_at,
                source=MONITOR,
                detail=f"{label}{state.facility_status}"
                + (f" ({state.detail})" if state.detail else ""),
            )
        phases = [t.phase for t in job.tasks]
        if all(p in FINAL_PHASES for p in phases):
            await self._finish_execution(job, now)
        else:
            target = aggregate_phase(phases)
            if target != job.phase and is_legal(job.phase, target):
                await self.ledger.transition(job, target, MONITOR, None, now)

    async def _finish_execution(self, job: Job, now: datetime) -> None:
        """All tasks ended: remember the outcome, collect results, then decide the phase.

        Runs once per job: the outcome is recorded in the same unit of work, and
        observations of a job with an outcome are dropped."""
        failed = [t for t in job.tasks if t.phase == Phase.ERROR]
        aborted = [t for t in job.tasks if t.phase == Phase.ABORTED]
        if failed:
            outcome = Phase.ERROR
            parts = [
                (f"task {t.index}: " if job.task_count > 1 else "")
                + (t.detail or t.facility_status or "failed")
                for t in failed[:5]
            ]
            more = f" (+{len(failed) - 5} more tasks failed)" if len(failed) > 5 else ""
            detail: str | None = "; ".join(parts) + more
        elif aborted:
            outcome, detail = Phase.ERROR, "the facility cancelled the job's tasks"
        else:
            outcome, detail = Phase.COMPLETED, None
        if job.phase == Phase.QUEUED:
            await self.ledger.transition(job, Phase.EXECUTING, MONITOR, None, now)
        await self.jobs.update(
            job.id, finished_outcome=outcome.value, finished_detail=detail, updated_at=now
        )
        job.finished_outcome, job.finished_detail = outcome.value, detail
        self.jobs.add_history(
            job.id,
            at=now,
            source=MONITOR,
            detail="execution finished"
            + (f": {detail}" if detail else "")
            + "; collecting results",
        )
        self.ledger.outbox.command(RESULTS_QUEUE, self.ledger.collect_command(job), at=now)

    async def _record_results(self, report: ResultsStaged) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        now = utcnow()
        if job is None:
            # The job was deleted while its results were staged: they must not linger.
            purge = PurgeResults(
                job_id=report.job_id,
                owner="",
                reason="deleted",
                dataset=report.dataset,
                rule_lifetime_s=self.ledger.policy.retention_rule_lifetime_s,
            )
            self.ledger.outbox.command(RESULTS_QUEUE, purge, at=now)
            await self.ledger.commit()
            return
        if job.phase == Phase.ARCHIVED:
            # Staged after the destruction time (a late or redelivered report): remove again.
            self.ledger.outbox.command(
                RESULTS_QUEUE, self.ledger.purge_results(job, "destroyed"), at=now
            )
            await self.ledger.commit()
            return
        staged = sorted((ResultRecord.of(r) for r in report.results), key=lambda r: r.name)
        settles = job.finished_outcome is not None and job.phase not in FINAL_PHASES
        if not settles and staged == await self.jobs.results(job.id):
            # A redelivered report of results already recorded: nothing new to say.
            await self.ledger.rollback()
            return
        await self.ledger.claim(job)
        if report.dataset and report.dataset != job.data_dataset:
            await self.jobs.update(job.id, data_dataset=report.dataset)
            job.data_dataset = report.dataset
        count = await self.jobs.replace_results(job.id, staged)
        self.jobs.add_history(
            job.id, at=now, source="results", detail=f"{count} result files stored"
        )
        self.ledger.event(
            job,
            job.phase,
            None,
            "results",
            f"{count} result files",
            now,
            what=RESULTS_STAGED,
            results=count,
        )
        if settles:
            assert job.finished_outcome is not None
            target = Phase(job.finished_outcome)
            if target == Phase.ERROR:
                await self.jobs.update(
                    job.id, error_type="fatal", error_message=job.finished_detail
                )
            await self.ledger.transition(job, target, "results", job.finished_detail, now)
        await self.ledger.commit()
        self.ledger.notify(job.id)

    async def _record_failure(self, report: JobFailureReported) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None or job.phase in FINAL_PHASES:
            await self.ledger.rollback()
            return
        await self.ledger.claim(job)
        now = utcnow()
        await self.jobs.update(job.id, error_type="fatal", error_message=report.reason)
        await self.ledger.transition(job, Phase.ERROR, report.source, report.reason, now)
        await self.ledger.commit()
        self.ledger.notify(job.id)
        log.info("job failed by a worker's report", job_id=job.id, source=report.source)


__all__ = ["ReportService"]

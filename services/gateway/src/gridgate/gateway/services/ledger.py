"""The mechanics of changing a job's state, shared by the job, report and housekeeping
services: claim, transition, history, events and commands, commit, retry on conflict.

Every unit of work that changes a job reads it, decides, then *claims* it
(:meth:`JobLedger.claim`) as its first write: the claim bumps the job's version only if
nobody changed the job since it was read. A unit of work that lost the race is rolled back
and run again from the top on fresh state, so decisions are never made on a stale read, on
SQLite (which takes no row locks) as on PostgreSQL (docs/adr/0007-job-state-concurrency.md).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts import (
    CollectResults,
    JobEvent,
    PurgeResults,
    ResourceLimits,
    SubmitJob,
)
from gridgate.contracts.callback import callback_token, token_digest
from gridgate.contracts.images import ImageProvenance
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.core.crashpoints import crash_point
from gridgate.gateway.exceptions import InvalidPhaseChangeError, JobBusyError
from gridgate.gateway.models.job import Job
from gridgate.gateway.models.phase_machine import is_legal
from gridgate.gateway.services.datalake import DataLakePolicy, input_groups
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.group_commit import GroupCommit
from gridgate.gateway.services.messages import Outbox
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.services.policy import MAX_OUTPUT_MB, JobPolicy
from gridgate.gateway.storage.jobs import JobStore, StaleJobError
from gridgate.gateway.storage.new_jobs import NewJobRows, checked_out, insert_new_jobs
from gridgate.workflows import (
    PYTHON_ON_NODE,
    WorkflowCatalogue,
    WorkflowDefinition,
    parameters_digest,
    render_tasks,
)
from gridgate.workflows.images import image_request

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 25
"""Claims lost in a row before a unit of work gives up (the job is changing very fast)."""


class JobLedger:
    """One unit of work's writer of job state; built per request or message."""

    def __init__(
        self,
        connection: AsyncConnection,
        jobs: JobStore,
        outbox: Outbox,
        workflows: WorkflowCatalogue,
        facilities: FacilityCatalogue,
        notifier: PhaseNotifier,
        policy: JobPolicy,
        data_policy: DataLakePolicy | None = None,
        group: GroupCommit | None = None,
    ) -> None:
        self.connection = connection
        self.group = group
        self.jobs = jobs
        self.outbox = outbox
        self.workflows = workflows
        self.facilities = facilities
        self.notifier = notifier
        self.policy = policy
        self.data_policy = data_policy or DataLakePolicy()
        # Events staged per (job, version) in this unit of work: their ordinals.
        self._staged_events: dict[tuple[str, int], int] = {}
        # Event sequence counters of stored jobs not yet written to their rows: job -> last.
        self._unsaved_sequences: dict[str, int] = {}

    async def retrying(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (one unit of work that reads, claims, writes and commits) until its
        claim holds; each new attempt starts from a rolled-back connection."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return await work()
            except StaleJobError as exc:
                await self.rollback()
                log.debug("job changed under this unit of work; again", job_id=str(exc))
                # Jitter: two handlers of one job must not collide again in lockstep.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311
        raise JobBusyError("The job is changing too fast to be updated now; try again.")

    async def claim(self, job: Job, **values: Any) -> None:
        """Take ``job`` for this unit of work, writing ``values`` to its row with the claim;
        :class:`StaleJobError` if it changed."""
        await self.jobs.claim(job, **values)

    async def claim_many(self, jobs: list[Job], **values: Any) -> set[str]:
        """:meth:`claim` of many jobs in one statement: the ids claimed (the others changed
        since they were read; the caller decides whether that voids its unit of work)."""
        return await self.jobs.claim_many(jobs, **values)

    async def commit(self) -> None:
        """Write the buffered history and outbox rows, then commit: one unit of work."""
        if self._unsaved_sequences:
            sequences, self._unsaved_sequences = self._unsaved_sequences, {}
            await self.jobs.save_event_sequences(sequences)
        await self.jobs.flush()
        await self.outbox.store.flush()
        crash_point("gateway-before-commit")
        await self.connection.commit()
        self._staged_events.clear()
        crash_point("gateway-after-commit")

    async def commit_new(self, rows: NewJobRows) -> None:
        """Commit the unit of work of a new job (``rows`` and what was staged): with other
        requests' new jobs when the process groups commits, else alone. Nothing of it may be
        written yet, and no transaction may be open; the connection may not be checked out
        yet either (a grouped job another request writes needs none)."""
        rows.history.extend(self.jobs.take_history())
        rows.outbox.extend(self.outbox.store.take())
        rows.journal.extend(self.outbox.store.journal.take())
        self._staged_events.clear()
        # A new job's counter is in its row (``job_row`` reads it after the events).
        self._unsaved_sequences.clear()
        if self.group is not None and await self.group.commit(rows, self.connection):
            return
        await insert_new_jobs(await checked_out(self.connection), [rows])
        crash_point("gateway-before-commit")
        crash_point("new-job-before-commit")
        await self.connection.commit()
        crash_point("gateway-after-commit")
        crash_point("new-job-committed")

    async def rollback(self) -> None:
        self._staged_events.clear()
        self._unsaved_sequences.clear()
        self.jobs.discard()
        self.outbox.store.discard()
        await self.connection.rollback()

    def notify(self, job_id: str) -> None:
        self.notifier.notify(job_id)

    async def transition(
        self, job: Job, target: Phase, source: str, detail: str | None, now: datetime
    ) -> None:
        """Move the job to ``target``: row, history entry and event, in this unit of work."""
        if not is_legal(job.phase, target):
            raise InvalidPhaseChangeError(
                f"Job {job.id} cannot go from {job.phase.value} to {target.value}."
            )
        values: dict[str, Any] = {"phase": target.value, "updated_at": now, "stall_reason": None}
        if target == Phase.EXECUTING and job.start_time is None:
            values["start_time"] = job.start_time = now
        if target in FINAL_PHASES and job.end_time is None:
            values["end_time"] = job.end_time = now
        if target in FINAL_PHASES:
            # The job's callback token dies with it: nothing may report on a final job.
            values["callback_token_hash"] = job.callback_token_hash = None
        job.stall_reason = None
        sequence = self._take_sequence(job)
        if not job.is_new:  # a new job's row is inserted afterwards, in its final state
            # The event's number rides on the update the transition makes anyway.
            values["event_sequence"] = sequence
            self._unsaved_sequences.pop(job.id, None)
            await self.jobs.update(job.id, **values)
        self.jobs.add_history(
            job.id, at=now, source=source, from_phase=job.phase, to_phase=target, detail=detail
        )
        previous, job.phase = job.phase, target
        self.event(job, target, previous, source, detail, now, sequence=sequence)

    def event(
        self,
        job: Job,
        phase: Phase,
        previous: Phase | None,
        source: str,
        detail: str | None,
        now: datetime,
        *,
        what: Phase | str | None = None,
        results: int | None = None,
        sequence: int | None = None,
    ) -> None:
        """Stage a job event; ``sequence`` when :meth:`_take_sequence` already gave it one."""
        data = JobEvent(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            phase=phase,
            previous_phase=previous,
            occurred_at=now,
            source=source,
            detail=detail,
            workflow_id=job.workflow_id,
            run_id=job.run_id,
            results=results,
            job_version=job.version,
            ordinal=self._next_ordinal(job),
            sequence=sequence if sequence is not None else self._take_sequence(job),
            notification_url=job.notification_url,
        )
        self.outbox.event(data, what if what is not None else phase)

    def _take_sequence(self, job: Job) -> int:
        """The next number of the job's events. Only units of work that emit an event call
        it, and they hold the job's claim, so the numbers are 1, 2, 3, ... with no gap and
        no repeat; the counter is written in the same transaction as the event."""
        job.event_sequence += 1
        if not job.is_new:
            self._unsaved_sequences[job.id] = job.event_sequence
        return job.event_sequence

    def _next_ordinal(self, job: Job) -> int:
        key = (job.id, job.version)
        ordinal = self._staged_events.get(key, 0)
        self._staged_events[key] = ordinal + 1
        return ordinal

    async def submit_command(self, job: Job, definition: WorkflowDefinition) -> SubmitJob:
        """The SubmitJob of ``job``; gives the job its callback token digest on the way."""
        # On DIRAC the worker node's interpreter is only known there: the job's wrapper
        # resolves "{python}" itself.
        remote = self.facilities.get(job.facility).is_grid
        container, recipe = definition.container, None
        if container is not None:
            recipe = self.workflows.recipe(definition.id, definition.version)
        if container is not None and recipe is not None:
            python = container.python  # the interpreter inside the image
        else:
            python = PYTHON_ON_NODE if remote else self.policy.worker_python
        tasks = render_tasks(
            definition,
            job.parameters,
            python=python,
            inputs=input_groups(job.inputs, job.task_count) or None,
        )
        needs = definition.requirements
        if self.policy.callback_secret and job.callback_token_hash is None:
            # Only the digest is kept; the submitter derives the token itself from the secret.
            token = callback_token(self.policy.callback_secret, job.id)
            job.callback_token_hash = token_digest(token)
            if not job.is_new:  # a new job's row is inserted afterwards, with the digest
                await self.jobs.update(job.id, callback_token_hash=job.callback_token_hash)
        return SubmitJob(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            group=job.group_name,
            facility=job.facility,
            workflow_id=definition.id,
            workflow_version=definition.version,
            tasks=tasks,
            limits=ResourceLimits(
                execution_duration_s=job.execution_duration,
                cores=needs.cores,
                gpus=needs.gpu_count,
                memory_mb=max(16, int(needs.memory_gb * 1024)),
                max_output_mb=MAX_OUTPUT_MB,
            ),
            outputs=list(definition.execution.outputs),
            image=image_request(container, recipe, job.parameters)
            if container is not None and recipe is not None
            else None,
        )

    def collect_command(self, job: Job) -> CollectResults:
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        scope, account = self.data_policy.placement(job.owner, job.vo)
        return CollectResults(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            facility=job.facility,
            outputs=list(definition.execution.outputs),
            task_count=job.task_count,
            workflow_id=job.workflow_id,
            workflow_version=job.workflow_version,
            parameters_digest=parameters_digest(job.parameters),
            facility_job_ids=[t.facility_job_id for t in job.tasks if t.facility_job_id],
            data_scope=scope,
            data_account=account,
            image=ImageProvenance.model_validate(job.image) if job.image else None,
        )

    def purge_results(self, job: Job, reason: Literal["deleted", "destroyed"]) -> PurgeResults:
        return PurgeResults(
            job_id=job.id,
            owner=job.owner,
            reason=reason,
            dataset=job.data_dataset,
            rule_lifetime_s=self.policy.retention_rule_lifetime_s,
        )

    async def forget(self, job: Job, now: datetime) -> None:
        """Delete a job's records; a tombstone lets its facility clean up as its owner."""
        if job.group_name is not None and job.phase != Phase.PENDING:
            await self.jobs.add_tombstone(job, now)
        await self.jobs.delete(job.id)


__all__ = ["MAX_ATTEMPTS", "JobLedger"]

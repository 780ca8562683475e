"""The job store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.gateway.models.job import (
    HistoryRecord,
    InFlightJob,
    Job,
    ResultRecord,
    TaskRecord,
    Tombstone,
)
from gridgate.gateway.schema import (
    history_table,
    jobs_table,
    results_table,
    tasks_table,
    tombstones_table,
)
from gridgate.gateway.schema.tables import callbacks_table

JOB_FIELDS = [c.name for c in jobs_table.columns]

# Built once: a statement object per call costs more than the INSERT itself (bench/README.md).
INSERT_JOB = insert(jobs_table)
INSERT_TASK = insert(tasks_table)
INSERT_HISTORY = insert(history_table)
SAVE_EVENT_SEQUENCE = (
    update(jobs_table)
    .where(jobs_table.c.id == bindparam("job"))
    .values(event_sequence=bindparam("sequence"))
)
# Keyed updates for executemany: the SET clause comes from each row's other keys.
UPDATE_JOB_BY_KEY = update(jobs_table).where(jobs_table.c.id == bindparam("key_id"))
UPDATE_TASK_BY_KEY = update(tasks_table).where(
    tasks_table.c.job_id == bindparam("key_job_id"),
    tasks_table.c.task_index == bindparam("key_task_index"),
)


def job_row(job: Job) -> dict[str, Any]:
    """The ``jobs`` row of a job model."""
    values = {name: getattr(job, name) for name in JOB_FIELDS}
    values["phase"] = job.phase.value
    return values


def _task_from_row(row: Row[Any]) -> TaskRecord:
    return TaskRecord(
        index=row.task_index,
        phase=Phase(row.phase),
        facility_job_id=row.facility_job_id,
        facility_status=row.facility_status,
        exit_code=row.exit_code,
        detail=row.detail,
        started_at=row.started_at,
        ended_at=row.ended_at,
        observed_at=row.observed_at,
    )


def _job_from_row(row: Row[Any]) -> Job:
    values = dict(row._mapping)
    values["phase"] = Phase(values["phase"])
    return Job(**values)


class StaleJobError(Exception):
    """Another unit of work changed the job since it was read: read it again and retry."""


class JobStore:
    """Rows of ``jobs`` and its child tables, as :class:`Job` models.

    History entries are buffered and written in one statement by :meth:`flush`, which the
    service calls just before it commits. A unit of work over many jobs (a batch of
    observations) may also :meth:`defer_updates`: then :meth:`update` and :meth:`update_task`
    are buffered too, merged per row, and written by :meth:`flush` as one executemany per
    set of columns instead of one round trip each.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._history: list[dict[str, Any]] = []
        self._deferred = False
        self._job_updates: dict[str, dict[str, Any]] = {}
        self._task_updates: dict[tuple[str, int], dict[str, Any]] = {}

    async def add_job(self, values: dict[str, Any]) -> None:
        await self.connection.execute(INSERT_JOB, values)
        await self.connection.execute(
            INSERT_TASK,
            [
                {"job_id": values["id"], "task_index": i, "phase": values["phase"]}
                for i in range(values["task_count"])
            ],
        )

    async def replace_tasks(self, job_id: str, count: int, phase: Phase) -> None:
        """Replace a job's task rows with ``count`` fresh ones (its parameters changed)."""
        await self.connection.execute(delete(tasks_table).where(tasks_table.c.job_id == job_id))
        await self.connection.execute(
            INSERT_TASK,
            [{"job_id": job_id, "task_index": i, "phase": phase.value} for i in range(count)],
        )

    def add_history(
        self,
        job_id: str,
        *,
        at: datetime,
        source: str,
        from_phase: Phase | None = None,
        to_phase: Phase | None = None,
        detail: str | None = None,
    ) -> None:
        self._history.append(
            {
                "job_id": job_id,
                "at": at,
                "source": source,
                "detail": detail,
                "from_phase": from_phase.value if from_phase else None,
                "to_phase": to_phase.value if to_phase else None,
            }
        )

    def take_history(self) -> list[dict[str, Any]]:
        """The buffered history entries, no longer buffered (the caller writes them)."""
        rows, self._history = self._history, []
        return rows

    def discard(self) -> None:
        """Forget buffered rows (the unit of work is rolled back to be retried)."""
        self._history.clear()
        self._job_updates.clear()
        self._task_updates.clear()

    def defer_updates(self) -> None:
        """Buffer :meth:`update` and :meth:`update_task` until :meth:`flush` from now on.

        Only for a unit of work that claimed its jobs first (nothing it reads back may depend
        on an update not yet written)."""
        self._deferred = True

    async def claim(self, job: Job, **values: Any) -> None:
        """Take the job for this unit of work: bump its version if nobody changed it since it
        was read, else raise :class:`StaleJobError`. ``values`` are written in the same
        statement (one round trip fewer for the unit of work's own update of the row).

        The first write of every unit of work that changes a job. On SQLite it also takes the
        database's write lock, so nothing else is written until the commit; on PostgreSQL
        the row lock of a ``FOR UPDATE`` read already serialises, and this check is the
        backstop that also holds where no lock was taken.
        """
        done = await self.connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job.id, jobs_table.c.version == job.version)
            .values(version=job.version + 1, **values)
        )
        if done.rowcount != 1:
            raise StaleJobError(job.id)
        job.version += 1

    async def hold_callback_token(self, job_id: str, digest: str) -> bool:
        """Take the job's row for a callback, if its callback token is still ``digest``:
        ``False`` when the job was deleted or ended (which revokes the token) since it was read.

        The callback's first write. It does not claim (no version bump: a callback decides
        nothing), but like a claim it takes SQLite's write lock, so the job cannot go between
        this check and the callback's commit; on PostgreSQL the ``FOR UPDATE`` read already
        holds the row.
        """
        done = await self.connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id, jobs_table.c.callback_token_hash == digest)
            .values(callback_token_hash=digest)
        )
        return done.rowcount == 1

    async def save_event_sequences(self, sequences: dict[str, int]) -> None:
        """Write jobs' event counters (job id -> sequence of its last event)."""
        await self.connection.execute(
            SAVE_EVENT_SEQUENCE,
            [{"job": job_id, "sequence": n} for job_id, n in sequences.items()],
        )

    async def flush(self) -> None:
        """Write the buffered row updates, then the buffered history entries."""
        await self.flush_updates()
        if self._history:
            rows, self._history = self._history, []
            await self.connection.execute(INSERT_HISTORY, rows)

    async def flush_updates(self) -> None:
        """Write the deferred updates: one executemany per set of columns (rows of one batch
        mostly change the same columns, so that is one or two statements per table)."""
        jobs, self._job_updates = self._job_updates, {}
        tasks, self._task_updates = self._task_updates, {}
        for keyed in _by_columns({"key_id": job_id} | values for job_id, values in jobs.items()):
            await self.connection.execute(UPDATE_JOB_BY_KEY, keyed)
        for keyed in _by_columns(
            {"key_job_id": job_id, "key_task_index": index} | values
            for (job_id, index), values in tasks.items()
        ):
            await self.connection.execute(UPDATE_TASK_BY_KEY, keyed)

    async def get_many(self, job_ids: Sequence[str], *, for_update: bool = False) -> dict[str, Job]:
        """The jobs of ``job_ids`` that exist, with their tasks, in two statements.

        ``for_update`` locks the rows in id order, so that two batches (two replicas) that
        share jobs wait for each other instead of deadlocking."""
        query = select(jobs_table).where(jobs_table.c.id.in_(job_ids)).order_by(jobs_table.c.id)
        if for_update:
            query = query.with_for_update()
        jobs = {row.id: _job_from_row(row) for row in await self.connection.execute(query)}
        if jobs:
            rows = await self.connection.execute(
                select(tasks_table)
                .where(tasks_table.c.job_id.in_(list(jobs)))
                .order_by(tasks_table.c.job_id, tasks_table.c.task_index)
            )
            for row in rows:
                jobs[row.job_id].tasks.append(_task_from_row(row))
        return jobs

    async def claim_many(self, jobs: Sequence[Job], **values: Any) -> set[str]:
        """:meth:`claim` of many jobs in one statement: the ids of those still at the version
        read (their version is bumped, ``values`` written); the others changed meanwhile."""
        keys = [(job.id, job.version) for job in jobs]
        done = await self.connection.execute(
            update(jobs_table)
            # The plain IN lets the planner use the primary key; the pairs are the claim.
            .where(
                jobs_table.c.id.in_([job.id for job in jobs]),
                tuple_(jobs_table.c.id, jobs_table.c.version).in_(keys),
            )
            .values(version=jobs_table.c.version + 1, **values)
            .returning(jobs_table.c.id)
        )
        claimed = set(done.scalars())
        for job in jobs:
            if job.id in claimed:
                job.version += 1
        return claimed

    async def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        """The job with its tasks (not history or results)."""
        query = select(jobs_table).where(jobs_table.c.id == job_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        job = _job_from_row(row)
        job.tasks = await self.tasks(job_id)
        return job

    async def tasks(self, job_id: str) -> list[TaskRecord]:
        rows = await self.connection.execute(
            select(tasks_table)
            .where(tasks_table.c.job_id == job_id)
            .order_by(tasks_table.c.task_index)
        )
        return [_task_from_row(r) for r in rows]

    async def history(self, job_id: str) -> list[HistoryRecord]:
        rows = await self.connection.execute(
            select(history_table)
            .where(history_table.c.job_id == job_id)
            .order_by(history_table.c.id)
        )
        return [
            HistoryRecord(
                at=r.at,
                source=r.source,
                detail=r.detail,
                from_phase=Phase(r.from_phase) if r.from_phase else None,
                to_phase=Phase(r.to_phase) if r.to_phase else None,
            )
            for r in rows
        ]

    async def results(self, job_id: str) -> list[ResultRecord]:
        rows = await self.connection.execute(
            select(results_table)
            .where(results_table.c.job_id == job_id)
            .order_by(results_table.c.name)
        )
        return [ResultRecord.of(r) for r in rows]

    async def update(self, job_id: str, **values: Any) -> None:
        if self._deferred:
            self._job_updates.setdefault(job_id, {}).update(values)
            return
        await self.connection.execute(
            update(jobs_table).where(jobs_table.c.id == job_id).values(**values)
        )

    async def update_task(self, job_id: str, index: int, **values: Any) -> None:
        if self._deferred:
            self._task_updates.setdefault((job_id, index), {}).update(values)
            return
        await self.connection.execute(
            update(tasks_table)
            .where(tasks_table.c.job_id == job_id, tasks_table.c.task_index == index)
            .values(**values)
        )

    async def replace_results(self, job_id: str, results: Iterable[ResultRecord]) -> int:
        """Store the job's result list (idempotent: a redelivery writes the same rows)."""
        await self.connection.execute(delete(results_table).where(results_table.c.job_id == job_id))
        rows = [
            {
                "job_id": job_id,
                "name": r.name,
                "size": r.size,
                "media_type": r.media_type,
                "sha256": r.sha256,
                "adler32": r.adler32,
                "task_index": r.task_index,
                "did": r.did,
                "location": r.location,
            }
            for r in results
        ]
        if rows:
            await self.connection.execute(insert(results_table), rows)
        return len(rows)

    async def result(self, job_id: str, name: str) -> ResultRecord | None:
        """One result of a job, whoever owns it (signed downloads check the signature)."""
        row = (
            await self.connection.execute(
                select(results_table).where(
                    results_table.c.job_id == job_id, results_table.c.name == name
                )
            )
        ).first()
        return ResultRecord.of(row) if row is not None else None

    async def past_destruction(self, now: datetime, limit: int) -> list[Job]:
        """Jobs whose destruction time has passed and that are not archived yet."""
        rows = await self.connection.execute(
            select(jobs_table)
            .where(
                jobs_table.c.destruction <= now,
                jobs_table.c.phase != Phase.ARCHIVED.value,
            )
            .order_by(jobs_table.c.destruction)
            .limit(limit)
        )
        jobs = [_job_from_row(r) for r in rows]
        for job in jobs:
            job.tasks = await self.tasks(job.id)
        return jobs

    async def delete(self, job_id: str) -> None:
        for table in (results_table, history_table, callbacks_table, tasks_table):
            await self.connection.execute(delete(table).where(table.c.job_id == job_id))
        await self.connection.execute(delete(jobs_table).where(jobs_table.c.id == job_id))

    async def add_tombstone(self, job: Job, deleted_at: datetime) -> None:
        await self.connection.execute(
            insert(tombstones_table).values(
                job_id=job.id,
                owner=job.owner,
                vo=job.vo,
                group_name=job.group_name,
                facility=job.facility,
                deleted_at=deleted_at,
            )
        )

    async def tombstone(self, job_id: str) -> Tombstone | None:
        row = (
            await self.connection.execute(
                select(tombstones_table).where(tombstones_table.c.job_id == job_id)
            )
        ).first()
        return Tombstone(**row._mapping) if row is not None else None

    async def prune_tombstones(self, before: datetime) -> int:
        done = await self.connection.execute(
            delete(tombstones_table).where(tombstones_table.c.deleted_at < before)
        )
        return int(done.rowcount or 0)

    async def page(
        self,
        *,
        owner: str,
        phases: Sequence[Phase],
        after: datetime | None,
        limit: int,
        cursor: tuple[datetime, str] | None,
    ) -> tuple[list[Job], int]:
        """A page of the owner's jobs, newest first, and the total matching the filters."""
        conditions = [jobs_table.c.owner == owner]
        if phases:
            conditions.append(jobs_table.c.phase.in_([p.value for p in phases]))
        else:
            # UWS 1.1: ARCHIVED jobs are listed only when asked for by PHASE.
            conditions.append(jobs_table.c.phase != Phase.ARCHIVED.value)
        if after is not None:
            conditions.append(jobs_table.c.creation_time > after)
        total = (
            await self.connection.execute(
                select(func.count()).select_from(jobs_table).where(and_(*conditions))
            )
        ).scalar_one()
        if cursor is not None:
            created, job_id = cursor
            conditions.append(
                or_(
                    jobs_table.c.creation_time < created,
                    and_(jobs_table.c.creation_time == created, jobs_table.c.id < job_id),
                )
            )
        rows = await self.connection.execute(
            select(jobs_table)
            .where(and_(*conditions))
            .order_by(jobs_table.c.creation_time.desc(), jobs_table.c.id.desc())
            .limit(limit)
        )
        return [_job_from_row(r) for r in rows], int(total)

    async def stalled(self, before: datetime, limit: int) -> list[Job]:
        """Active jobs with no recorded change since ``before``, oldest first, with tasks.

        A job already noticed as waiting on its facility is left out (it was told once);
        jobs still to be submitted or collected stay in, since those can be sent again.
        """
        submitted = (
            select(tasks_table.c.job_id)
            .where(
                tasks_table.c.job_id == jobs_table.c.id,
                tasks_table.c.facility_job_id.is_not(None),
            )
            .exists()
        )
        rows = await self.connection.execute(
            select(jobs_table)
            .where(
                jobs_table.c.phase.in_([Phase.QUEUED.value, Phase.EXECUTING.value]),
                jobs_table.c.updated_at < before,
                or_(
                    jobs_table.c.stall_reason.is_(None),
                    jobs_table.c.finished_outcome.is_not(None),
                    ~submitted,
                ),
            )
            .order_by(jobs_table.c.updated_at)
            .limit(limit)
        )
        jobs = [_job_from_row(r) for r in rows]
        for job in jobs:
            job.tasks = await self.tasks(job.id)
        return jobs

    async def expiring_credentials(self, before: datetime) -> list[Job]:
        """Live jobs whose credential runs out before ``before`` and whose owner was not told."""
        live = [p.value for p in Phase if p not in FINAL_PHASES]
        rows = await self.connection.execute(
            select(jobs_table).where(
                jobs_table.c.credential_expires_at < before,
                jobs_table.c.credential_warned.is_(False),
                jobs_table.c.phase.in_(live),
            )
        )
        return [_job_from_row(r) for r in rows]

    async def in_flight(self, facility: str, limit: int, after: str | None) -> list[InFlightJob]:
        """A page of the jobs a facility still runs (not final), by id after ``after``, with
        their tasks; only the columns the monitor compares, in one statement."""
        not_final = [p.value for p in Phase if p not in FINAL_PHASES and p != Phase.PENDING]
        page = (
            select(jobs_table.c.id, jobs_table.c.owner, jobs_table.c.group_name, jobs_table.c.phase)
            .where(
                jobs_table.c.facility == facility,
                jobs_table.c.phase.in_(not_final),
                jobs_table.c.finished_outcome.is_(None),
            )
            .order_by(jobs_table.c.id)
            .limit(limit)
        )
        if after is not None:
            page = page.where(jobs_table.c.id > after)
        paged = page.subquery()
        t = tasks_table.c
        rows = await self.connection.execute(
            select(
                paged,
                t.task_index,
                t.facility_job_id,
                t.phase.label("task_phase"),
                t.facility_status,
                t.exit_code,
                t.detail,
            )
            .select_from(paged.outerjoin(tasks_table, t.job_id == paged.c.id))
            .order_by(paged.c.id, t.task_index)
        )
        jobs: dict[str, InFlightJob] = {}
        for r in rows:
            job = jobs.get(r.id)
            if job is None:
                job = jobs[r.id] = InFlightJob(r.id, r.owner, r.group_name, Phase(r.phase))
            if r.task_index is not None:
                job.tasks.append(
                    TaskRecord(
                        index=r.task_index,
                        phase=Phase(r.task_phase),
                        facility_job_id=r.facility_job_id,
                        facility_status=r.facility_status,
                        exit_code=r.exit_code,
                        detail=r.detail,
                    )
                )
        return list(jobs.values())


def _by_columns(rows: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their keys: an executemany needs the same columns in every row."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


__all__ = ["JOB_FIELDS", "JobStore", "StaleJobError"]

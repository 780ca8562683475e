"""Group commit of new jobs: the jobs of concurrent requests in one transaction.

Alone, each new job pays for its own transaction: five statements, a commit and their round
trips. Requests that create jobs at the same time queue their rows here instead;
one of them (the *leader*) writes everything queued so far on its own connection, one
statement per table, and commits once; the others wait for that commit. While a leader
writes, new requests queue up, and the next leader takes them all. With one request at a
time nothing waits: the leader writes its own job alone, at once.

Nothing is answered before the commit that holds its job, so a crash at any line loses only
jobs no client was told of, as with one transaction per job. A batch that fails (a twin's
Idempotency-Key, a lost connection) is not retried as a batch: each request then writes its
own job in its own transaction, as if there were no grouping, and meets its own error; the
leader, whose connection failed it, raises its error at once unless it was a constraint
(which may be another request's).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.core.crashpoints import crash_point
from gridgate.gateway.services.turns import LeaderTurns
from gridgate.gateway.storage.new_jobs import NewJobRows, checked_out, insert_new_jobs

Outcome = Literal["committed", "lead", "alone"]


class GroupCommit(LeaderTurns[NewJobRows, Outcome]):
    """One per gateway process; :meth:`commit` is called by each request's unit of work."""

    def __init__(self, max_batch: int = 200) -> None:
        super().__init__()
        self.max_batch = max_batch
        self.batches = 0
        """Group transactions committed (a figure for the benchmarks)."""
        self.failed = 0
        """Group transactions that failed, their requests then written alone."""

    async def commit(self, rows: NewJobRows, connection: AsyncConnection) -> bool:
        """Write ``rows`` in a group transaction; ``True`` once committed, ``False`` if the
        caller must write them alone (the group failed). ``connection`` has no transaction
        open and is used (checked out of the pool, if it was not yet) only if this request
        becomes the leader: the others wait without holding one."""
        turn, outcome = await self._wait_turn(rows)
        if outcome is not None and outcome != "lead":
            return outcome == "committed"
        try:
            return await self._lead(turn, connection)
        finally:
            self._hand_over()

    async def _lead(self, own: asyncio.Future[Outcome], connection: AsyncConnection) -> bool:
        others = [(rows, turn) for rows, turn in self._queue if turn is not own]
        mine = [(rows, turn) for rows, turn in self._queue if turn is own]
        batch = mine + others[: self.max_batch - 1]
        self._queue = others[self.max_batch - 1 :]
        try:
            await insert_new_jobs(await checked_out(connection), [rows for rows, _ in batch])
            crash_point("gateway-before-commit")
            # The same windows, passed by new jobs only (background rounds pass the others).
            crash_point("new-job-before-commit")
            await connection.commit()
        except BaseException as exc:
            # Each request then writes alone and meets its own error (or succeeds).
            self._release(batch, "alone")
            self.failed += 1
            await _rollback(connection)
            if isinstance(exc, IntegrityError) and len(batch) > 1:
                return False  # perhaps another request's fault: this one tries alone
            # Its own fault, or the database's: tried alone it would fail the same way.
            raise
        self.batches += 1
        self._release(batch, "committed")
        crash_point("gateway-after-commit")
        crash_point("new-job-committed")
        return True


async def _rollback(connection: AsyncConnection) -> None:
    if connection.sync_connection is None:
        return  # never checked out: nothing to roll back
    try:
        await connection.rollback()
    except Exception:  # noqa: S110 - the connection is broken; the pool discards it
        pass


__all__ = ["GroupCommit"]

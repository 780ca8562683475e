"""Clients' idempotency keys: which job a (user, key) created, and from what request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.gateway.schema import idempotency_table


@dataclass(frozen=True)
class IdempotencyRecord:
    request_digest: str
    job_id: str


def idempotency_row(
    owner: str, key: str, request_digest: str, job_id: str, at: datetime
) -> dict[str, object]:
    """The row recording a key (written with the job it created)."""
    return {
        "owner": owner,
        "key": key,
        "request_digest": request_digest,
        "job_id": job_id,
        "created_at": at,
    }


class IdempotencyStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, owner: str, key: str) -> IdempotencyRecord | None:
        row = (
            await self.connection.execute(
                select(idempotency_table.c.request_digest, idempotency_table.c.job_id).where(
                    idempotency_table.c.owner == owner, idempotency_table.c.key == key
                )
            )
        ).first()
        return IdempotencyRecord(row.request_digest, row.job_id) if row is not None else None

    async def prune(self, before: datetime) -> int:
        done = await self.connection.execute(
            delete(idempotency_table).where(idempotency_table.c.created_at < before)
        )
        return int(done.rowcount or 0)


__all__ = ["IdempotencyRecord", "IdempotencyStore", "idempotency_row"]

"""Rows of diracx_links to records and back. The store never commits and never decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.auth.links.keys import LinkKey
from gridgate.auth.links.tables import diracx_links


@dataclass(frozen=True)
class LinkRow:
    key: LinkKey
    status: str
    reason: str | None
    diracx_user: str | None
    sealed_refresh: str | None
    refresh_expires_at: float | None
    sealed_access: str | None
    access_expires_at: float | None
    sealed_device_code: str | None
    user_code: str | None
    verification_uri: str | None
    device_expires_at: float | None


def _where(key: LinkKey) -> Any:
    c = diracx_links.c
    return (c.sub == key.sub) & (c.vo == key.vo) & (c.group_name == key.group)


class LinkStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def get(self, key: LinkKey, *, for_update: bool = False) -> LinkRow | None:
        query = select(diracx_links).where(_where(key))
        if for_update and self._db.dialect.name == "postgresql":
            # SQLite's engine takes the write lock at BEGIN IMMEDIATE instead
            query = query.with_for_update()
        row = (await self._db.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def list_for(self, sub: str) -> list[LinkRow]:
        query = (
            select(diracx_links)
            .where(diracx_links.c.sub == sub)
            .order_by(diracx_links.c.vo, diracx_links.c.group_name)
        )
        return [_record(row) for row in (await self._db.execute(query)).mappings()]

    async def upsert(self, key: LinkKey, values: dict[str, Any]) -> None:
        done = await self._db.execute(update(diracx_links).where(_where(key)).values(**values))
        if done.rowcount == 0:
            await self._db.execute(
                insert(diracx_links).values(sub=key.sub, vo=key.vo, group_name=key.group, **values)
            )

    async def update(self, key: LinkKey, values: dict[str, Any]) -> None:
        await self._db.execute(update(diracx_links).where(_where(key)).values(**values))

    async def delete(self, key: LinkKey) -> None:
        await self._db.execute(delete(diracx_links).where(_where(key)))


def _record(row: Any) -> LinkRow:
    return LinkRow(
        key=LinkKey(row["sub"], row["vo"], row["group_name"]),
        status=row["status"],
        reason=row["reason"],
        diracx_user=row["diracx_user"],
        sealed_refresh=row["sealed_refresh"],
        refresh_expires_at=row["refresh_expires_at"],
        sealed_access=row["sealed_access"],
        access_expires_at=row["access_expires_at"],
        sealed_device_code=row["sealed_device_code"],
        user_code=row["user_code"],
        verification_uri=row["verification_uri"],
        device_expires_at=row["device_expires_at"],
    )

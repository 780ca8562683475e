"""``INSERT ... ON CONFLICT`` in the dialect of the connection at hand.

Only that dialect is imported: a SQLite deployment (``gridgate dev``, the embedded default)
need not load SQLAlchemy's PostgreSQL dialect and its four drivers' adapters, about 3.5 MiB
(ADR 0019).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import Dialect


def conflict_insert(dialect: Dialect, target: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``target`` that can take ``on_conflict_do_nothing`` or
    ``on_conflict_do_update``, for PostgreSQL or SQLite."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(target)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(target)

"""Alembic environment: runs on a connection handed over by gridgate.auth.links.migrate."""

from __future__ import annotations

from alembic import context

from gridgate.auth.links.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the auth service upgrades its schema at start (gridgate.auth.links.migrate)"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=context.config.get_main_option("version_table") or "alembic_version",
)
with context.begin_transaction():
    context.run_migrations()

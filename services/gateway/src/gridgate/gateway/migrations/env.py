"""Alembic environment: runs on a connection handed over by gridgate.gateway.schema.migrate."""

from __future__ import annotations

from alembic import context

from gridgate.gateway.schema.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with 'gridgate-gateway migrate', which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

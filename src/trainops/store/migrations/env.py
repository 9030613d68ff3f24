"""Alembic environment: migrations run on the connection trainops hands in (see ``trainops.store.migrate``)."""

from __future__ import annotations

from alembic import context

from trainops.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run trainops migrations through `trainops db upgrade` (trainops.store.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: always driven programmatically with a connection handed in by ``engine.migrate``."""

from __future__ import annotations

from alembic import context

from retake.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("retake migrations run through retake.store.engine.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

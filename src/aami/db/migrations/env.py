"""Alembic environment: runs on the connection handed over by ``aami.db.migrate``."""

from __future__ import annotations

from alembic import context

from aami.db.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` without our wrapper
    raise RuntimeError("run migrations with `aami db upgrade`")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

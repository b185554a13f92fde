"""Alembic environment: migrations run on the connection ``Ledger.migrate`` passes."""

from __future__ import annotations

from alembic import context

from audit.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table="audit_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()

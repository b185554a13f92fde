"""Alembic environment: migrations run on the connection ``VerifierStore.migrate`` passes."""

from __future__ import annotations

from alembic import context

import verifiers.tables  # noqa: F401 - registers the store tables on the metadata
from verifiers.publish import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

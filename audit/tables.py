"""The ledger database (SQLAlchemy Core): entries, tree nodes, head, checkpoints, keys.

The schema is created and upgraded by the Alembic migrations in ``audit/migrations``
(``Ledger.migrate``), whose version table is ``audit_alembic_version`` so the ledger can
share a PostgreSQL database with other services.

* ``ledger_entries``: one row per leaf, ``seq`` = leaf index; ``entry`` holds the
  canonical bytes (:mod:`audit.canonical`), ``leaf_hash`` their RFC 9162 leaf hash; the
  other columns repeat fields of the entry for filtering and are checked by ``verify``.
* ``ledger_nodes``: every completed interior node of level ≥ 4 of the tree (lower ones
  are recomputed from at most 8 leaf hashes, see ``audit.merkle``), keyed by
  ``(leaf, level)`` where ``leaf`` is the last leaf under it: the node at level ``L``,
  index ``i`` has ``leaf = (i + 1)·2^L − 1``, so nodes sort in the order they complete.
* ``ledger_head``: one row, the tree size and its right-edge frontier; appenders lock it.
* ``ledger_checkpoints``, ``ledger_signing_keys`` (public keys only, kept after rotation),
  ``ledger_subject_keys`` (wrapped per-subject data keys; erasure nulls ``wrapped``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out timezone-aware UTC, on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UtcDateTime()
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("log_id", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("frontier", sa.LargeBinary(), nullable=False),
    sa.Column("last_leaf", sa.LargeBinary(), nullable=False),
    sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
    sa.Column("checkpoint_at", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=True),
)

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("event_time", Timestamp, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("entry", sa.LargeBinary(), nullable=False),
    sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
    sa.Index("ix_ledger_entries_subject", "tenant", "subject"),
    sa.Index("ix_ledger_entries_time", "event_time"),
)

nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("leaf", Seq, primary_key=True, autoincrement=False),
    sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(), nullable=False),
)

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(), nullable=False),
    sa.Column("signed_at", Timestamp, nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.LargeBinary(), nullable=False),
    sa.Column("published_at", Timestamp, nullable=True),
)

signing_keys = sa.Table(
    "ledger_signing_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

subject_keys = sa.Table(
    "ledger_subject_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(193), nullable=False),  # tenant/subject (the partition key)
    sa.Column("wrapped", sa.LargeBinary(), nullable=True),  # NULL once erased
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("erased_at", Timestamp, nullable=True),
    sa.Index("ix_ledger_subject_keys_owner", "owner", "erased_at"),
)

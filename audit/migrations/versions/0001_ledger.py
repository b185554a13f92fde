"""The ledger: entries, tree nodes, head, checkpoints, signing keys, subject keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

Timestamp = sa.DateTime(timezone=True)
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("log_id", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("last_leaf", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=True),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_time", Timestamp, nullable=False),
        sa.Column("recorded_at", Timestamp, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_ledger_entries_subject", "ledger_entries", ["tenant", "subject"])
    op.create_index("ix_ledger_entries_time", "ledger_entries", ["event_time"])
    op.create_table(
        "ledger_nodes",
        sa.Column("leaf", Seq, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", Timestamp, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("published_at", Timestamp, nullable=True),
    )
    op.create_table(
        "ledger_signing_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "ledger_subject_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(193), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("erased_at", Timestamp, nullable=True),
    )
    op.create_index("ix_ledger_subject_keys_owner", "ledger_subject_keys", ["owner", "erased_at"])


def downgrade() -> None:
    for table in (
        "ledger_subject_keys",
        "ledger_signing_keys",
        "ledger_checkpoints",
        "ledger_nodes",
        "ledger_entries",
        "ledger_head",
    ):
        op.drop_table(table)

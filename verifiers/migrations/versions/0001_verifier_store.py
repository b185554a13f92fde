"""The verifier store: outbox, enrollments, challenges, recovery codes, lockout gate.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # a relay that reached the database first made the outbox already (``Outbox.create``,
    # the same table and index: verifiers/publish.py), as a deployment starting its
    # processes together may have it; the store adopts it
    if not sa.inspect(op.get_bind()).has_table("outbox_events"):
        op.create_table(
            "outbox_events",
            sa.Column("seq", BigId, primary_key=True, autoincrement=True),
            sa.Column("event_id", sa.String(36), nullable=False, unique=True),
            sa.Column("partition_key", sa.String(193), nullable=False),
            sa.Column("event_type", sa.String(64), nullable=False),
            sa.Column("value", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", Timestamp, nullable=False),
            sa.Column("sent_at", Timestamp, nullable=True),
        )
        op.create_index("ix_outbox_events_unsent", "outbox_events", ["sent_at", "seq"])
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("factor", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("destination", sa.LargeBinary(), nullable=True),
        sa.Column("credential_id", sa.String(1400), nullable=True, unique=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("sign_count", sa.BigInteger(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("confirmed_at", Timestamp, nullable=True),
        sa.Column("removed_at", Timestamp, nullable=True),
    )
    op.create_index("ix_enrollments_subject", "enrollments", ["tenant", "subject", "factor"])
    op.create_table(
        "challenges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("factor", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("enrollment_id", sa.String(64), nullable=True),
        sa.Column("code_hash", sa.LargeBinary(), nullable=True),
        sa.Column("salt", sa.LargeBinary(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.Column("closed_reason", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_challenges_open", "challenges", ["tenant", "subject", "factor", "closed_at"]
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("set_id", sa.String(64), nullable=False),
        sa.Column("lookup", sa.LargeBinary(), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
    )
    op.create_index("ix_recovery_codes_subject", "recovery_codes", ["tenant", "subject"])
    op.create_index("ix_recovery_codes_lookup", "recovery_codes", ["lookup"])
    op.create_table(
        "lockout_states",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=True),
    )


def downgrade() -> None:
    for table in ("lockout_states", "recovery_codes", "challenges", "enrollments", "outbox_events"):
        op.drop_table(table)

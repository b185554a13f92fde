"""Trusted devices (remember-me): token and device binding stored as keyed hashes.

Revision ID: 0004_trusted_devices
Revises: 0003_admin_overrides
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_trusted_devices"
down_revision = "0003_admin_overrides"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trusted_devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("binding_salt", sa.LargeBinary(16), nullable=False),
        sa.Column("binding_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("device_name", sa.LargeBinary(), nullable=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("assertion_id", sa.String(128), nullable=True, unique=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.Column("revoked_reason", sa.String(64), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_trusted_devices_subject", "trusted_devices", ["tenant", "subject"])


def downgrade() -> None:
    op.drop_table("trusted_devices")

"""Administrators' two-person overrides and the temporary-access codes they grant.

Revision ID: 0003_admin_overrides
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_admin_overrides"
down_revision = "0002"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "override_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("justification", sa.String(1024), nullable=False),
        sa.Column("ticket", sa.String(128), nullable=False),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("approve_before", Timestamp, nullable=False),
        sa.Column("single_use", sa.Boolean(), nullable=True),
        sa.Column("valid_for_s", sa.Integer(), nullable=True),
        sa.Column("approved_by", sa.String(128), nullable=True),
        sa.Column("approved_at", Timestamp, nullable=True),
    )
    op.create_index("ix_override_requests_subject", "override_requests", ["tenant", "subject"])
    op.create_table(
        "temporary_access",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("lookup", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("temporary_access")
    op.drop_index("ix_override_requests_subject", table_name="override_requests")
    op.drop_table("override_requests")

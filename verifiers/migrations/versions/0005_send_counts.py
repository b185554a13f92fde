"""SMS and voice sends: per-tenant daily counters per destination country (the caps), and
each challenge's provider and provider message id (delivery receipts find it by them).

Revision ID: 0005_send_counts
Revises: 0004_trusted_devices
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_send_counts"
down_revision = "0004_trusted_devices"


def upgrade() -> None:
    op.create_table(
        "send_counts",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("country", sa.String(2), primary_key=True),
        sa.Column("sends", sa.BigInteger(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
    )
    op.add_column("challenges", sa.Column("provider", sa.String(128), nullable=True))
    op.add_column("challenges", sa.Column("provider_message_id", sa.String(128), nullable=True))
    op.create_index(
        "ix_challenges_provider_message",
        "challenges",
        ["tenant", "provider", "provider_message_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_challenges_provider_message", table_name="challenges")
    op.drop_column("challenges", "provider_message_id")
    op.drop_column("challenges", "provider")
    op.drop_table("send_counts")

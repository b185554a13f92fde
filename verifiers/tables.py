"""The verifier database: enrollments, challenges, recovery codes, trusted devices, lockout
gate, outbox, administrators' overrides and temporary access.

One SQLAlchemy ``MetaData`` for the whole service database, so a ceremony's state change
and its outbox events commit in one transaction. The schema is created and upgraded by
the Alembic migrations in ``verifiers/migrations`` (``VerifierStore.migrate``).

Nothing secret is stored in clear: ``secret`` and ``destination`` are AES-GCM
ciphertexts bound to their row, ``code_hash`` is a keyed salted hash, recovery codes
are scrypt hashes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from verifiers.publish import metadata, outbox_events


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

INVITED = "invited"
"""An enrollment's status while it is an administrator's invitation (no secret yet,
:mod:`verifiers.bulk_enrollment`); then ``pending`` (waiting for its first code),
``active`` and ``removed``."""

enrollments = sa.Table(
    "enrollments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("factor", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # invited | pending | active | removed
    sa.Column("secret", sa.LargeBinary(), nullable=True),  # AES-GCM, bound to the row id
    sa.Column("destination", sa.LargeBinary(), nullable=True),  # AES-GCM phone or e-mail
    sa.Column("credential_id", sa.String(1400), nullable=True, unique=True),  # WebAuthn
    sa.Column("settings", sa.JSON(), nullable=False, default=dict),
    sa.Column("last_step", sa.BigInteger(), nullable=True),  # TOTP replay guard
    sa.Column("sign_count", sa.BigInteger(), nullable=True),  # WebAuthn counter
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("confirmed_at", Timestamp, nullable=True),
    sa.Column("removed_at", Timestamp, nullable=True),
    sa.Index("ix_enrollments_subject", "tenant", "subject", "factor"),
)

challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("factor", sa.String(32), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),  # authenticate | enroll
    sa.Column("enrollment_id", sa.String(64), nullable=True),
    sa.Column("code_hash", sa.LargeBinary(), nullable=True),
    sa.Column("salt", sa.LargeBinary(), nullable=True),
    sa.Column("data", sa.JSON(), nullable=False, default=dict),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("closed_at", Timestamp, nullable=True),
    sa.Column("closed_reason", sa.String(32), nullable=True),  # used, superseded, expired, …
    sa.Column("provider", sa.String(128), nullable=True),  # who accepted an SMS/voice/e-mail
    sa.Column("provider_message_id", sa.String(128), nullable=True),  # its id: receipts
    sa.Index("ix_challenges_open", "tenant", "subject", "factor", "closed_at"),
    sa.Index("ix_challenges_provider_message", "tenant", "provider", "provider_message_id"),
)

send_counts = sa.Table(
    "send_counts",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),  # UTC
    sa.Column("country", sa.String(2), primary_key=True),  # ISO alpha-2; ZZ: not known
    sa.Column("sends", sa.BigInteger(), nullable=False),
    sa.Column("spend_micros", sa.BigInteger(), nullable=False),
)
"""SMS and voice sends per tenant, UTC day and destination country (``verifiers.sendcaps``)."""

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("set_id", sa.String(64), nullable=False),
    sa.Column("lookup", sa.LargeBinary(), nullable=False),  # keyed HMAC: finds the row
    sa.Column("code_hash", sa.String(128), nullable=False),  # scrypt: verifies the code
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Index("ix_recovery_codes_subject", "tenant", "subject"),
    sa.Index("ix_recovery_codes_lookup", "lookup"),
)

lockout_states = sa.Table(
    "lockout_states",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("state", sa.JSON(), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=True),
)

service_clients = sa.Table(
    "service_clients",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("audience", sa.String(256), nullable=False),
    sa.Column("label", sa.String(128), nullable=True),
    sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),  # SHA-256 of a 256-bit secret
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
)
"""The MFA service's callers: one credential per row, bound to one tenant."""

override_requests = sa.Table(
    "override_requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # unlock | temporary_access
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("justification", sa.String(1024), nullable=False),
    sa.Column("ticket", sa.String(128), nullable=False),
    sa.Column("requested_at", Timestamp, nullable=False),
    sa.Column("approve_before", Timestamp, nullable=False),
    sa.Column("single_use", sa.Boolean(), nullable=True),  # temporary access only
    sa.Column("valid_for_s", sa.Integer(), nullable=True),  # temporary access only
    sa.Column("approved_by", sa.String(128), nullable=True),
    sa.Column("approved_at", Timestamp, nullable=True),
    sa.Index("ix_override_requests_subject", "tenant", "subject"),
)
"""Administrators' overrides waiting for, or given, a second administrator's approval."""

temporary_access = sa.Table(
    "temporary_access",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("lookup", sa.LargeBinary(32), nullable=False, unique=True),  # keyed HMAC of the code
    sa.Column("single_use", sa.Boolean(), nullable=False),
    sa.Column("uses", sa.Integer(), nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)
"""Temporary-access codes, kept only as a keyed hash (the code has 80 random bits)."""

trusted_devices = sa.Table(
    "trusted_devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),  # keyed HMAC
    sa.Column("binding_salt", sa.LargeBinary(16), nullable=False),
    sa.Column("binding_hash", sa.LargeBinary(32), nullable=False),  # keyed salted HMAC
    sa.Column("device_name", sa.LargeBinary(), nullable=True),  # AES-GCM, bound to the row id
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("assertion_id", sa.String(128), nullable=True, unique=True),  # jti: one use
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Index("ix_trusted_devices_subject", "tenant", "subject"),
)
"""Devices a subject trusted (remember-me): the token and the device binding as keyed
hashes, never in clear (:mod:`verifiers.trusted_devices`)."""

ALL_TABLES = (
    outbox_events,
    enrollments,
    challenges,
    recovery_codes,
    lockout_states,
    service_clients,
    override_requests,
    temporary_access,
    trusted_devices,
    send_counts,
)

__all__ = [
    "ALL_TABLES",
    "INVITED",
    "Timestamp",
    "UtcDateTime",
    "challenges",
    "enrollments",
    "lockout_states",
    "metadata",
    "outbox_events",
    "override_requests",
    "recovery_codes",
    "send_counts",
    "service_clients",
    "temporary_access",
    "trusted_devices",
]

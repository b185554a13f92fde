"""The service's callers: per-tenant credentials, shown once, stored as hashes, revocable.

A credential is ``fsc_<id>.<secret>``: the id finds the row, the secret is 256 random bits
(base64url). The database keeps only SHA-256 of the secret: the secret is high entropy, so
a slow hash adds nothing, and the comparison is constant time. A client acts for its one
tenant; nothing it sends can name another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from schemas.envelope import ATTRIBUTE_PATTERNS
from verifiers.tables import service_clients

PREFIX = "fsc_"
SECRET_BYTES = 32


@dataclass(frozen=True)
class ServiceClient:
    """A caller of the service: its tenant and the audience of the assertions it gets."""

    client_id: str
    tenant: str
    audience: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class IssuedCredential:
    """A new client and its bearer credential (shown once; only its hash is kept)."""

    client: ServiceClient
    credential: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class ServiceClients:
    """The credentials in the verifier database (table ``service_clients``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self, *, tenant: str, audience: str | None, label: str | None, now: datetime
    ) -> IssuedCredential:
        """A new credential for ``tenant``; ``audience`` defaults to the tenant's name."""
        if len(tenant) > 64 or not re.fullmatch(ATTRIBUTE_PATTERNS["tenant"], tenant):
            raise ValueError(
                f"a tenant is 1–64 letters, digits, '.', '_' or '-' (the event contract's "
                f"tenant), found {tenant!r}"
            )
        client = ServiceClient(
            client_id=secrets.token_hex(8),
            tenant=tenant,
            audience=audience or tenant,
            label=label,
            created_at=now,
        )
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
        with self.engine.begin() as connection:
            connection.execute(
                service_clients.insert().values(
                    id=client.client_id,
                    tenant=client.tenant,
                    audience=client.audience,
                    label=label,
                    secret_hash=_hash(secret),
                    created_at=now,
                )
            )
        return IssuedCredential(client, f"{PREFIX}{client.client_id}.{secret}")

    def list(self) -> list[ServiceClient]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(service_clients).order_by(service_clients.c.created_at)
            ).all()
        return [_client(row) for row in rows]

    def revoke(self, client_id: str, *, now: datetime) -> bool:
        """Revoke a client; ``False`` if there is no such client still in force."""
        with self.engine.begin() as connection:
            changed = connection.execute(
                service_clients.update()
                .where(service_clients.c.id == client_id, service_clients.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        return bool(changed)

    def authenticate(self, credential: str) -> ServiceClient | None:
        """The client a bearer credential belongs to, or ``None`` (unknown, wrong secret,
        revoked or malformed: the caller cannot tell which)."""
        if not credential.startswith(PREFIX) or "." not in credential:
            return None
        client_id, _, secret = credential[len(PREFIX) :].partition(".")
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(service_clients).where(service_clients.c.id == client_id)
            ).one_or_none()
        if row is None:
            _hash(secret)  # the same work as a known id: timing does not tell ids apart
            return None
        if not hmac.compare_digest(_hash(secret), row.secret_hash) or row.revoked_at:
            return None
        return _client(row)


def _client(row: sa.Row[tuple[object, ...]]) -> ServiceClient:
    return ServiceClient(
        client_id=row.id,
        tenant=row.tenant,
        audience=row.audience,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )

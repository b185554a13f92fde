"""The service's callers: per-tenant credentials, shown once, stored as hashes, revocable.

A credential is ``fsc_<id>.<secret>``: the id finds the row, the secret is 256 random bits
(base64url). The database keeps only SHA-256 of the secret: the secret is high entropy, so
a slow hash adds nothing, and the comparison is constant time. A client acts for its one
tenant; nothing it sends can name another.

**Cache.** A credential that authenticated is remembered in memory for
:data:`CACHE_SECONDS` (keyed by SHA-256 of the whole credential, so the process holds no
secret it did not already have the hash of), sparing the database a look-up per request.
Only successes are cached: an unknown, wrong or revoked credential is checked against the
database every time. A revocation through this object drops the client's entries at once;
one made elsewhere (``factorstream clients revoke`` in another process) takes effect in
the service within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from schemas.envelope import check_tenant
from verifiers.tables import service_clients

PREFIX = "fsc_"
SECRET_BYTES = 32
CACHE_SECONDS = 5.0
"""How long an authenticated credential is trusted without asking the database again: the
longest a revocation made by another process goes unnoticed."""
MAX_CACHED = 10_000

_BY_ID = sa.select(service_clients).where(service_clients.c.id == sa.bindparam("client_id"))


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

    def __init__(
        self,
        engine: sa.Engine,
        *,
        cache_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``cache_seconds``: how long a successful authentication is remembered (0: never;
        see the module docstring); ``monotonic``: the cache's clock."""
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[bytes, tuple[ServiceClient, float]] = {}
        self._cache_lock = threading.Lock()

    def add(
        self, *, tenant: str, audience: str | None, label: str | None, now: datetime
    ) -> IssuedCredential:
        """A new credential for ``tenant``; ``audience`` defaults to the tenant's name."""
        check_tenant(tenant)
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
        self._forget(client_id)
        return bool(changed)

    def cached(self, credential: str) -> ServiceClient | None:
        """The client of a credential that authenticated less than ``cache_seconds`` ago,
        from memory; ``None`` means ask :meth:`authenticate` (never: refuse)."""
        hit = self._cache.get(_hash(credential))
        if hit is None:
            return None
        client, expires = hit
        if self._monotonic() >= expires:
            with self._cache_lock:
                self._cache.pop(_hash(credential), None)
            return None
        return client

    def authenticate(self, credential: str) -> ServiceClient | None:
        """The client a bearer credential belongs to, or ``None`` (unknown, wrong secret,
        revoked or malformed: the caller cannot tell which)."""
        hit = self.cached(credential)
        if hit is not None:
            return hit
        if not credential.startswith(PREFIX) or "." not in credential:
            return None
        client_id, _, secret = credential[len(PREFIX) :].partition(".")
        with self.engine.connect() as connection:
            row = connection.execute(_BY_ID, {"client_id": client_id}).one_or_none()
        if row is None:
            _hash(secret)  # the same work as a known id: timing does not tell ids apart
            return None
        if not hmac.compare_digest(_hash(secret), row.secret_hash) or row.revoked_at:
            return None
        client = _client(row)
        self._remember(credential, client)
        return client

    def _remember(self, credential: str, client: ServiceClient) -> None:
        if self.cache_seconds <= 0:
            return
        expires = self._monotonic() + self.cache_seconds
        with self._cache_lock:
            while len(self._cache) >= MAX_CACHED:  # the oldest entries go first
                del self._cache[next(iter(self._cache))]
            self._cache[_hash(credential)] = (client, expires)

    def _forget(self, client_id: str) -> None:
        with self._cache_lock:
            for key in [k for k, (c, _) in self._cache.items() if c.client_id == client_id]:
                del self._cache[key]


def _client(row: sa.Row[tuple[object, ...]]) -> ServiceClient:
    return ServiceClient(
        client_id=row.id,
        tenant=row.tenant,
        audience=row.audience,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )

"""Dashboard users: name, role, a scrypt password hash, and a TOTP enrollment in our verifiers.

A dashboard user is a *subject* of the tenant :data:`TENANT` under the admin policy tier:
the TOTP secret, its replay guard and the lockout state live in a
:class:`verifiers.store.VerifierStore` in the same database, so a dashboard sign-in is
an MFA ceremony like any other and its failures are events in that store's outbox.

Passwords are hashed with scrypt (memory-hard, 64 MiB; per-user random salt) and
compared in constant time. Sessions are rows of :data:`sessions`, so logging out (or
disabling a user) ends a session server-side, not only in the browser; a row keeps the
SHA-256 of its session id, never the id itself, so a copy of the database opens no session.

Wrong passwords lock a user only for a while (:data:`CONSOLE_TIERS`): the console's name is
no secret, and anyone could otherwise lock an auditor out for good.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

import pyotp
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import Event
from schemas.fields import PolicyTier
from schemas.payloads import AdminOverrideApproved
from verifiers import totp
from verifiers.policy import tier_policy
from verifiers.store import Request, VerifierStore
from verifiers.tables import UtcDateTime

TENANT = "factorstream-dashboard"
APPLICATION = "factorstream-dashboard"
ISSUER = "factorstream dashboard"
TIER = PolicyTier.ADMIN
CONSOLE_TIERS = MappingProxyType({TIER: tier_policy(TIER, max_temporary_lockouts=0)})
"""The dashboard's own sign-in policy: the admin tier's, except that no number of temporary
lockouts makes a lock permanent (the waits still grow, up to ``max_wait``). Only the NIST
cap (``consecutive_failure_cap``, 100 failures in a row with no sign-in between) still
locks for good, as SP 800-63B §5.2.2 requires; ``factorstream users unlock`` lifts it."""
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
"""OWASP's scrypt floor (128 MiB, about 0.3 s here): the cost is stored in each hash."""
_MAXMEM = 256 * 1024 * 1024


class Role(StrEnum):
    """What a dashboard user may do: everyone reads; auditors and admins export."""

    AUDITOR = "auditor"
    SOC = "soc"
    ADMIN = "admin"


EXPORT_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})


def may_export(role: Role | str) -> bool:
    return role in EXPORT_ROLES


class UserError(ValueError):
    """A user that exists already, does not exist, or a name or password that is refused."""


metadata = sa.MetaData()

users = sa.Table(
    "dashboard_users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("totp_enrollment_id", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("disabled_at", UtcDateTime(), nullable=True),
)

sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
)


def session_key(session_id: str) -> str:
    """What a session's row keeps of its id: SHA-256, hex (the id has 256 random bits, so no
    salt or slow hash is needed)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$<salt>$<hash>`` (base64), with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    encoded = (base64.b64encode(x).decode() for x in (salt, digest))
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'$'.join(encoded)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison of the digests)."""
    try:
        scheme, n, r, p, salt_text, digest_text = stored.split("$")
        salt, digest = base64.b64decode(salt_text), base64.b64decode(digest_text)
        cost = int(n), int(r), int(p)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(password, salt, *cost), digest)


def burn_password_time(password: str) -> None:
    """Spend what a real check costs, so an unknown name cannot be told by timing."""
    verify_password(
        password, f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"
    )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


@dataclass(frozen=True)
class User:
    name: str
    subject: str
    role: Role
    password_hash: str
    totp_enrollment_id: str
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class NewUser:
    """What ``users add`` shows once: the TOTP secret, its URI and the QR code of the URI."""

    user: User
    secret: str
    provisioning_uri: str


def _request(subject: str, now: datetime) -> Request:
    return Request(
        tenant=TENANT,
        subject=subject,
        correlationid=f"dashboard-admin-{uuid.uuid4().hex}",
        now=now,
        tier=TIER,
        application=APPLICATION,
    )


class UserDirectory:
    """The dashboard users, their sessions, and the verifier store holding their TOTP."""

    def __init__(self, store: VerifierStore) -> None:
        self.store = store
        self.engine = store.engine

    def migrate(self) -> None:
        """Create the verifier store's schema and the dashboard's own tables."""
        self.store.migrate()
        metadata.create_all(self.engine, checkfirst=True)

    def add(self, name: str, *, role: Role | str, password: str, now: datetime) -> NewUser:
        """Create a user with a pending TOTP enrollment (its first good code activates it)."""
        name, role = name.strip(), Role(role)
        if not name or len(name) > 64 or not name.isprintable():
            raise UserError("a user name is 1–64 printable characters")
        if len(password) < 12:
            raise UserError("a password needs at least 12 characters")
        if self.get(name) is not None:
            raise UserError(f"user {name!r} exists already")
        subject = f"dashboard-user-{uuid.uuid4().hex[:16]}"
        secret = pyotp.random_base32(32)
        enrollment = totp.begin_enrollment(
            self.store, _request(subject, now), account_name=name, issuer=ISSUER, secret=secret
        )
        user = User(name, subject, role, hash_password(password), enrollment.enrollment_id, now)
        with self.engine.begin() as connection:
            connection.execute(
                users.insert().values(
                    name=user.name,
                    subject=user.subject,
                    role=user.role.value,
                    password_hash=user.password_hash,
                    totp_enrollment_id=user.totp_enrollment_id,
                    created_at=now,
                )
            )
        return NewUser(user, secret, enrollment.provisioning_uri)

    def get(self, name: str) -> User | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(users).where(users.c.name == name)).one_or_none()
        return None if row is None else _user(row)

    def all(self) -> list[User]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(users).order_by(users.c.name)).all()
        return [_user(row) for row in rows]

    def disable(self, name: str, *, now: datetime) -> None:
        with self.engine.begin() as connection:
            done = connection.execute(
                users.update().where(users.c.name == name).values(disabled_at=now)
            )
            if done.rowcount != 1:
                raise UserError(f"no user {name!r}")
            connection.execute(
                sessions.update()
                .where(sessions.c.name == name, sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )

    def unlock(
        self, name: str, *, now: datetime, approved_by: str, signer: Ed25519PrivateKey
    ) -> Event:
        """Lift ``name``'s lockout (temporary or permanent) as an administrator's override:
        an ``admin.override.approved`` (action ``unlock``), signed by ``signer`` (the stream
        accepts control events only from trusted keys), folded by the same lockout fold in
        the store and, relayed, in the stream and the ledger."""
        user = self.get(name)
        if user is None:
            raise UserError(f"no user {name!r}")
        request = _request(user.subject, now)
        with self.store.step(request, factor=None) as step:
            return step.emit(
                AdminOverrideApproved(
                    request_id=f"unlock-{uuid.uuid4().hex}",
                    approved_by=approved_by,
                    action="unlock",
                ),
                signer=signer,
            )

    def record(self, events: Sequence[Event]) -> None:
        """Stage ``events`` of the dashboard itself (e.g. a pack downloaded) in the store's
        outbox, committed when this returns: the relay publishes them with the sign-ins."""
        with self.engine.begin() as connection:
            self.store.outbox.add(connection, events)

    def open_session(self, name: str, *, now: datetime, expires_at: datetime) -> str:
        """A new session id (256 random bits) for ``name``; the row keeps only its hash."""
        session_id = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            connection.execute(
                sessions.insert().values(
                    id=session_key(session_id), name=name, created_at=now, expires_at=expires_at
                )
            )
        return session_id

    def session_user(self, session_id: str, *, now: datetime) -> User | None:
        """The user of a live session (not ended, not expired, user not disabled)."""
        query = (
            sa.select(users)
            .join(sessions, sessions.c.name == users.c.name)
            .where(
                sessions.c.id == session_key(session_id),
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > now,
                users.c.disabled_at.is_(None),
            )
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _user(row)

    def end_session(self, session_id: str, *, now: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sessions.update()
                .where(sessions.c.id == session_key(session_id), sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )


def expire_sessions(engine: sa.Engine, *, ended_before: datetime) -> int:
    """Retention: delete the session rows that ended (signed out, or expired) before
    ``ended_before``; how many. Idempotent; a live session is never deleted."""
    with engine.begin() as connection:
        deleted = connection.execute(
            sessions.delete().where(
                sa.or_(sessions.c.ended_at < ended_before, sessions.c.expires_at < ended_before)
            )
        ).rowcount
    return int(deleted)


def oldest_session(engine: sa.Engine) -> datetime | None:
    """When the oldest session row held was opened (``None``: none)."""
    with engine.connect() as connection:
        oldest: datetime | None = connection.scalar(sa.select(sa.func.min(sessions.c.created_at)))
    return oldest


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    mapping = row._mapping
    return User(
        name=mapping["name"],
        subject=mapping["subject"],
        role=Role(mapping["role"]),
        password_hash=mapping["password_hash"],
        totp_enrollment_id=mapping["totp_enrollment_id"],
        created_at=mapping["created_at"],
        disabled_at=mapping["disabled_at"],
    )

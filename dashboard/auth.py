"""Signing in to the dashboard: password, then a TOTP code through our own verifiers.

The ceremony, in order (``now`` is a parameter; the HTTP edge reads the clock):

1. An unknown or disabled name costs a full scrypt evaluation and is refused like a
   wrong password (no event: such a name is no subject).
2. The password is checked (scrypt, constant-time) *before* the subject's locked step,
   so the costly KDF never holds the store's write lock.
3. In one gated step of the :class:`~verifiers.store.VerifierStore`: a locked subject is
   refused (``auth.login.attempted`` failure, reason ``locked_out``: recorded, not
   counted); a wrong password is an ``auth.login.attempted`` failure, counted by the
   lockout fold like every failure (:data:`~dashboard.users.CONSOLE_TIERS`: 3 failures
   lock for 5 minutes, growing to 30, never for good short of NIST's cap of 100 in a
   row); a right one is a first-factor success with
   ``mfa_required=True``, which resets nothing.
4. The code goes to :func:`verifiers.totp.verify` (replay guard, constant-time compare,
   lockout gate, ``mfa.verification.failed|succeeded``), or, for a user whose enrollment
   is still pending, to :func:`verifiers.totp.confirm_enrollment`; a refused
   confirmation is recorded as a counted ``auth.login.attempted`` failure too.

Every event lands in the store's outbox, so ``factorstream relay`` publishes the
dashboard's failed sign-ins with every other verifier event, and the stream derives
their ``lockout.applied`` events from the same fold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dashboard.users import (
    APPLICATION,
    TENANT,
    TIER,
    User,
    UserDirectory,
    burn_password_time,
    verify_password,
)
from schemas.fields import Client, Outcome
from schemas.payloads import LoginAttempted
from verifiers import totp
from verifiers.store import Request, Verdict
from verifiers.tables import enrollments

INVALID = "invalid_credentials"
LOCKED = "locked_out"


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the user, or a refusal with a reason."""

    user: User | None
    reason: str | None = None
    locked_until: datetime | None = None
    detail: str | None = None
    """The verifier's own reason (``invalid_code``, ``replayed``, …), for logs and tests."""

    @property
    def accepted(self) -> bool:
        return self.user is not None


def sign_in(
    directory: UserDirectory,
    *,
    name: str,
    password: str,
    code: str,
    now: datetime,
    client: Client | None = None,
) -> SignIn:
    """Run the sign-in ceremony (see the module docstring)."""
    user = directory.get(name.strip())
    if user is None or user.disabled_at is not None:
        burn_password_time(password)
        return SignIn(None, INVALID, detail="unknown_user")
    password_ok = verify_password(password, user.password_hash)
    request = Request(
        tenant=TENANT,
        subject=user.subject,
        correlationid=f"dashboard-login-{uuid.uuid4().hex}",
        now=now,
        tier=TIER,
        application=APPLICATION,
        client=client,
    )
    store = directory.store
    with store.step(request, factor=None) as step:
        if step.lockout.locked:
            step.emit(_login_failed(LOCKED))
            return SignIn(None, LOCKED, step.lockout.until, detail=LOCKED)
        if not password_ok:
            step.emit(_login_failed("invalid_password"))
            status = step.current_lockout()
            return SignIn(None, INVALID, status.until, detail="invalid_password")
        step.emit(LoginAttempted(outcome=Outcome.SUCCESS, method="password", mfa_required=True))
    verdict = _second_factor(directory, request, user, code.strip())
    if verdict.accepted:
        return SignIn(user)
    if verdict.reason == LOCKED:
        return SignIn(None, LOCKED, store.lockout(request).until, detail=LOCKED)
    return SignIn(None, INVALID, verdict.locked_until, detail=verdict.reason)


def _second_factor(directory: UserDirectory, request: Request, user: User, code: str) -> Verdict:
    store = directory.store
    if not _pending(directory, user):
        return totp.verify(store, request, code=code)
    verdict = totp.confirm_enrollment(
        store, request, enrollment_id=user.totp_enrollment_id, code=code
    )
    with store.step(request, factor=None) as step:
        if verdict.accepted:  # the first code both activates the enrollment and signs in
            step.emit(LoginAttempted(outcome=Outcome.SUCCESS, method="totp_enrollment"))
        elif verdict.reason != LOCKED:
            step.emit(_login_failed(verdict.reason or "invalid_code", method="totp_enrollment"))
            return Verdict.refused(verdict.reason or "invalid_code", verdict.event, step)
    return verdict


def _pending(directory: UserDirectory, user: User) -> bool:
    with directory.engine.connect() as connection:
        status = connection.execute(
            sa.select(enrollments.c.status).where(enrollments.c.id == user.totp_enrollment_id)
        ).scalar_one_or_none()
    return status == "pending"


def _login_failed(reason: str, *, method: str = "password") -> LoginAttempted:
    return LoginAttempted(outcome=Outcome.FAILURE, method=method, reason=reason)


@dataclass(frozen=True)
class AccountStatus:
    totp: str
    """``pending`` (no good code yet), ``active``, or ``missing``."""
    lockout: str
    """``-``, ``until <time>`` or ``permanent``."""


def account_status(directory: UserDirectory, user: User, *, now: datetime) -> AccountStatus:
    """A user's authenticator and lockout state at ``now`` (for ``factorstream users list``)."""
    with directory.engine.connect() as connection:
        totp_status = connection.execute(
            sa.select(enrollments.c.status).where(enrollments.c.id == user.totp_enrollment_id)
        ).scalar_one_or_none()
    request = Request(
        tenant=TENANT,
        subject=user.subject,
        correlationid="dashboard-status",
        now=now,
        tier=TIER,
        application=APPLICATION,
    )
    status = directory.store.lockout(request)
    if not status.locked:
        lockout = "-"
    elif status.permanent:
        lockout = "permanent"
    else:
        lockout = f"until {status.until.isoformat(timespec='seconds') if status.until else '?'}"
    return AccountStatus(totp_status or "missing", lockout)

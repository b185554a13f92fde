"""TOTP (RFC 6238) with pyotp: enrollment by QR code, confirm-by-first-code, replay guard.

* Secrets are 160 random bits, encrypted at rest, and leave the store only inside the
  ``otpauth://`` URI and QR code shown once at enrollment.
* A code is accepted within ±1 time step; the matched step is stored and **a step
  accepted once is never accepted again** (RFC 6238 §5.2): the store only moves
  ``last_step`` forward, in one conditional UPDATE, inside the subject's locked step.
* Codes are compared in constant time (``hmac.compare_digest``) and never recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import segno
import sqlalchemy as sa

from schemas.fields import Channel, Factor
from schemas.payloads import (
    Authenticator,
    EnrollmentCompleted,
    EnrollmentFailed,
    EnrollmentStarted,
    VerificationFailed,
    VerificationSucceeded,
)
from verifiers.factors import subject_known
from verifiers.store import Request, Step, Verdict, VerifierError, VerifierStore
from verifiers.tables import enrollments

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}
VALID_WINDOW = 1
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
MIN_SECRET_BYTES = 16  # 128 bits (RFC 4226 §4 asks for at least 128, recommends 160)
DIGITS = (6, 8)
PERIODS = range(15, 121)
"""The settings an enrollment may have: digits and period (seconds)."""


class TotpSettingsError(VerifierError, ValueError):
    """Unsupported algorithm, digits or period."""


@dataclass(frozen=True)
class TotpEnrollment:
    """What the person scans. ``provisioning_uri`` holds the secret: show it once."""

    enrollment_id: str
    provisioning_uri: str
    qr_svg: str


def begin_enrollment(
    store: VerifierStore,
    request: Request,
    *,
    account_name: str,
    issuer: str,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
    secret: str | None = None,
) -> TotpEnrollment:
    """Create a pending TOTP enrollment; it becomes active with its first good code.

    ``secret`` imports an existing base32 seed (migrating from another system); by
    default a new 160-bit seed is drawn.
    """
    if algorithm not in ALGORITHMS or digits not in DIGITS or period not in PERIODS:
        raise TotpSettingsError(
            f"expected algorithm in {sorted(ALGORITHMS)}, digits 6 or 8 and a period of "
            f"15–120 s; got {algorithm!r}, {digits}, {period}"
        )
    secret = secret or "".join(store.entropy.choice(BASE32) for _ in range(32))
    if len(_decoded(secret)) < MIN_SECRET_BYTES:
        raise TotpSettingsError(f"a TOTP secret needs at least {MIN_SECRET_BYTES * 8} bits")
    enrollment_id = f"totp-{store.entropy.identifier()}"
    settings = {"algorithm": algorithm, "digits": digits, "period": period}
    with store.step(request, factor=Factor.TOTP, gated=False) as step:
        step.connection.execute(
            enrollments.insert().values(
                id=enrollment_id,
                tenant=request.tenant,
                subject=request.subject,
                factor=Factor.TOTP,
                status="pending",
                secret=store.seal_enrollment(enrollment_id, secret.encode()),
                settings=settings,
                created_at=request.now,
            )
        )
        step.emit(
            EnrollmentStarted(
                factor=Factor.TOTP, enrollment_id=enrollment_id, channel=Channel.AUTHENTICATOR_APP
            )
        )
    uri = _totp(secret, settings).provisioning_uri(name=account_name, issuer_name=issuer)
    return TotpEnrollment(enrollment_id, uri, segno.make(uri, error="m").svg_inline(scale=4))


def confirm_enrollment(
    store: VerifierStore, request: Request, *, enrollment_id: str, code: str
) -> Verdict:
    """Activate a pending enrollment with the first code the authenticator shows."""
    with store.step(request, factor=Factor.TOTP) as step:
        row = step.connection.execute(
            sa.select(enrollments).where(
                enrollments.c.id == enrollment_id,
                enrollments.c.tenant == request.tenant,
                enrollments.c.subject == request.subject,
                enrollments.c.status == "pending",
            )
        ).one_or_none()
        if row is None:
            return _enrollment_failed(step, enrollment_id, "unknown_enrollment")
        if step.lockout.locked:
            return _enrollment_failed(step, enrollment_id, "locked_out")
        matched = _match(store, row, code, request)
        if matched is None:
            return _enrollment_failed(step, enrollment_id, "invalid_code")
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == enrollment_id)
            .values(status="active", confirmed_at=request.now, last_step=matched)
        )
        settings = row.settings
        event = step.emit(
            EnrollmentCompleted(
                factor=Factor.TOTP,
                enrollment_id=enrollment_id,
                channel=Channel.AUTHENTICATOR_APP,
                authenticator=Authenticator(
                    algorithm=settings["algorithm"], digits=settings["digits"]
                ),
            )
        )
        return Verdict(True, None, event)


# Built once (statement construction costs more than execution on the hot path).
_ACTIVE = sa.select(enrollments.c.id, enrollments.c.secret, enrollments.c.settings).where(
    enrollments.c.tenant == sa.bindparam("tenant"),
    enrollments.c.subject == sa.bindparam("subject"),
    enrollments.c.factor == Factor.TOTP.value,
    enrollments.c.status == "active",
)
"""The subject's active TOTP enrollments: read with the subject's lock (``Step.rows``)."""
_ADVANCE_STEP = (
    enrollments.update()
    .where(
        enrollments.c.id == sa.bindparam("b_id"),
        enrollments.c.status == "active",
        sa.or_(enrollments.c.last_step.is_(None), enrollments.c.last_step < sa.bindparam("step")),
    )
    .values(last_step=sa.bindparam("step"))
)
"""The replay guard: the stored step only ever moves forward, in one conditional UPDATE
(with the success event it decides, :meth:`Step.emit_if`), and only while the enrollment
is active; PostgreSQL re-checks it against the newest row, whatever the read saw."""
_STILL_ACTIVE = sa.select(enrollments.c.status == "active").where(
    enrollments.c.id == sa.bindparam("b_id")
)


def verify(
    store: VerifierStore, request: Request, *, code: str, refuse_unknown_subject: bool = False
) -> Verdict:
    """Verify a code against the subject's active TOTP enrollments.

    ``refuse_unknown_subject``: a subject with nothing enrolled in its tenant (no pending
    or active factor, no recovery code left) gets ``unknown_subject`` and leaves no trace:
    the step rolls back, no lockout row and no event (the service's 404, checked inside
    this step's transaction rather than in one of its own). Without it such a subject is
    ``not_enrolled``, recorded as a failed verification.
    """
    with store.step(request, factor=Factor.TOTP, read=_ACTIVE) as step:
        rows = step.rows
        if (
            not rows
            and refuse_unknown_subject
            and not subject_known(step.connection, tenant=request.tenant, subject=request.subject)
        ):
            step.abandon()
            return Verdict(False, "unknown_subject")
        if step.lockout.locked:
            return _failed(step, "locked_out", None)
        if not rows:
            return _failed(step, "not_enrolled", None)
        if not _well_formed(code, {row.settings["digits"] for row in rows}):
            return _failed(step, "malformed_code", None)
        replayed_id = None
        for row in rows:
            matched = _match(store, row, code, request)
            if matched is None:
                continue
            event = step.emit_if(
                _ADVANCE_STEP,
                {"b_id": row.id, "step": matched},
                VerificationSucceeded(factor=Factor.TOTP, enrollment_id=row.id),
            )
            if event is not None:
                return Verdict(True, None, event)
            # refused by the guard: the step was used, or (a concurrent removal the read
            # did not see) the enrollment is no longer active
            if step.connection.execute(_STILL_ACTIVE, {"b_id": row.id}).scalar_one():
                replayed_id = row.id
        if replayed_id is not None:
            return _failed(step, "replayed", replayed_id)
        return _failed(step, "invalid_code", None)


def _decoded(secret: str) -> bytes:
    try:
        return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    except ValueError:
        raise TotpSettingsError("the TOTP secret is not base32") from None


def _well_formed(code: str, digit_counts: set[int]) -> bool:
    return code.isascii() and code.isdigit() and len(code) in digit_counts


def _totp(secret: str, settings: dict[str, Any]) -> pyotp.TOTP:
    return pyotp.TOTP(
        secret,
        digits=settings["digits"],
        digest=ALGORITHMS[settings["algorithm"]],
        interval=settings["period"],
    )


def _match(store: VerifierStore, row: Any, code: str, request: Request) -> int | None:
    """The time step ``code`` matches within the window, or ``None``."""
    settings = row.settings
    digits = settings["digits"]
    if not _well_formed(code, {digits}):
        return None
    key = _decoded(store.open_enrollment(row.id, row.secret).decode())
    digest = ALGORITHMS[settings["algorithm"]]
    now_step = int(request.now.timestamp()) // settings["period"]
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if hmac.compare_digest(code, _hotp(key, step, digits, digest)):
            return step
    return None


def _hotp(key: bytes, counter: int, digits: int, digest: Callable[..., Any]) -> str:
    """RFC 4226 §5.3: HMAC the counter, truncate dynamically, keep ``digits`` digits (what
    pyotp computes, with the key decoded once per verification rather than per step)."""
    mac = hmac.digest(key, counter.to_bytes(8, "big"), digest)
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _failed(step: Step, reason: str, enrollment_id: str | None) -> Verdict:
    event = step.emit(
        VerificationFailed(factor=Factor.TOTP, reason=reason, enrollment_id=enrollment_id)
    )
    return Verdict.refused(reason, event, step)


def _enrollment_failed(step: Step, enrollment_id: str, reason: str) -> Verdict:
    event = step.emit(
        EnrollmentFailed(factor=Factor.TOTP, enrollment_id=enrollment_id, reason=reason)
    )
    return Verdict.refused(reason, event, step)

"""Push approval with number matching (CISA, "Implementing Number Matching in MFA").

The sign-in screen shows a two-digit number; the phone asks the person to type it.
Approving with the wrong number is refused (it is what a fatigued person tapping
"approve" on an attacker's prompt does), and every challenge is answered once: approve,
reject, report fraud, or expire. The context the person saw (application, location,
time) travels in the events, so an auditor sees what was approved.

The phone authenticates its answers: a push enrollment (:func:`begin_enrollment`,
:func:`confirm_enrollment`) holds the public half of an Ed25519 key pair made on the
device, and :func:`respond_signed` accepts only answers signed with it
(:mod:`verifiers.device_keys`); an unsigned, foreign, altered or replayed answer is
refused with its own reason and recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from schemas.fields import Channel, Client, Factor
from schemas.payloads import (
    Authenticator,
    ChallengeIssued,
    EnrollmentCompleted,
    EnrollmentFailed,
    EnrollmentStarted,
    PushApproved,
    PushExpired,
    PushRejected,
    PushReportedFraud,
    VerificationFailed,
)
from verifiers import device_keys
from verifiers.device_keys import DeviceKeyError
from verifiers.resend import refuse_send, retry_after
from verifiers.store import Request, Step, Verdict, VerifierStore
from verifiers.tables import challenges, enrollments

DEFAULT_TTL = timedelta(seconds=60)
MAX_DEVICE_NAME = 128
ANSWERED = frozenset({"used", "rejected", "reported_fraud", "number_mismatch"})
"""How a challenge closes when it was answered: another answer to it is a replay."""
CLOSED = {"expired": "expired", "locked_out": "challenge_closed"}

__all__ = [
    "Decision",
    "DeviceKeyError",
    "PushChallenge",
    "PushEnrollment",
    "PushRefused",
    "SignedAnswer",
    "active_enrollment",
    "begin_enrollment",
    "confirm_enrollment",
    "expire",
    "respond",
    "respond_signed",
    "send_push",
]


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REPORT_FRAUD = "report_fraud"


@dataclass(frozen=True)
class PushChallenge:
    """What the sign-in screen shows (``number``) and what the phone shows (``context``)."""

    challenge_id: str
    number: str
    expires_at: datetime
    application: str | None
    location: str | None
    requested_at: datetime


@dataclass(frozen=True)
class PushEnrollment:
    """A pending push enrollment: the device proves it holds the key by signing
    :func:`verifiers.device_keys.enrollment_bytes` of ``enrollment_id`` and ``key_id``."""

    enrollment_id: str
    key_id: str


@dataclass(frozen=True)
class SignedAnswer:
    """The phone's answer to a push, as it signed it (:mod:`verifiers.device_keys`)."""

    challenge_id: str
    decision: Decision
    number: str | None
    signature: str | None
    key_id: str | None = None


class PushRefused(Exception):
    """No push was sent: ``reason``, until when the refusal holds (``locked_until``:
    ``locked_out``: the lock's end, ``None`` when permanent; ``push_pending``: the open
    push's expiry; ``resend_cooldown``, ``send_limit``: when a push will be sent), and
    ``retry_after``, the whole seconds from the request until then (``None``: permanent)."""

    def __init__(
        self, reason: str, locked_until: datetime | None, retry_after: int | None = None
    ) -> None:
        super().__init__(reason if locked_until is None else f"{reason} until {locked_until}")
        self.reason, self.locked_until, self.retry_after = reason, locked_until, retry_after


# -- enrollment --------------------------------------------------------------------------


def begin_enrollment(
    store: VerifierStore,
    request: Request,
    *,
    device_key: Mapping[str, Any],
    device_name: str | None = None,
) -> PushEnrollment:
    """Record a pending push enrollment holding the device's public key (an Ed25519 JWK;
    :class:`DeviceKeyError` before anything is stored when it is not one)."""
    raw = device_keys.parse_jwk(device_key)
    if device_name is not None and not 0 < len(device_name) <= MAX_DEVICE_NAME:
        raise DeviceKeyError(f"device_name: expected 1-{MAX_DEVICE_NAME} characters")
    enrollment_id = f"push-{store.entropy.identifier()}"
    key_id = device_keys.thumbprint(raw)
    with store.step(request, factor=Factor.PUSH, gated=False) as step:
        step.connection.execute(
            enrollments.insert().values(
                id=enrollment_id,
                tenant=request.tenant,
                subject=request.subject,
                factor=Factor.PUSH,
                status="pending",
                secret=store.seal_enrollment(enrollment_id, raw),
                settings={"key_id": key_id, "device_name": device_name},
                created_at=request.now,
            )
        )
        step.emit(
            EnrollmentStarted(factor=Factor.PUSH, enrollment_id=enrollment_id, channel=Channel.PUSH)
        )
    return PushEnrollment(enrollment_id, key_id)


def confirm_enrollment(
    store: VerifierStore, request: Request, *, enrollment_id: str, signature: str | None
) -> Verdict:
    """Activate a pending push enrollment with the device's proof of possession. Refused:
    ``unknown_enrollment``, ``unsigned_answer``, ``bad_signature`` (each recorded as
    ``mfa.enrollment.failed``; the enrollment stays pending for a good proof)."""
    with store.step(request, factor=Factor.PUSH, gated=False) as step:
        row = step.connection.execute(
            sa.select(enrollments).where(
                enrollments.c.id == enrollment_id,
                enrollments.c.tenant == request.tenant,
                enrollments.c.subject == request.subject,
                enrollments.c.factor == Factor.PUSH,
                enrollments.c.status == "pending",
            )
        ).one_or_none()

        def fail(reason: str) -> Verdict:
            event = step.emit(
                EnrollmentFailed(factor=Factor.PUSH, enrollment_id=enrollment_id, reason=reason)
            )
            return Verdict.refused(reason, event)

        if row is None or row.secret is None:
            return fail("unknown_enrollment")
        raw = store.open_enrollment(row.id, row.secret)
        proof = device_keys.enrollment_bytes(
            tenant=request.tenant,
            subject=request.subject,
            enrollment_id=row.id,
            key_id=device_keys.thumbprint(raw),
        )
        problem = device_keys.check_signature(raw, proof, signature=signature, key_id=None)
        if problem is not None:
            return fail("unsigned_answer" if problem == "unsigned" else problem)
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == row.id)
            .values(status="active", confirmed_at=request.now)
        )
        name = row.settings.get("device_name")
        event = step.emit(
            EnrollmentCompleted(
                factor=Factor.PUSH,
                enrollment_id=row.id,
                channel=Channel.PUSH,
                authenticator=Authenticator(name=name) if name else None,
                elapsed_ms=request.ms_since(row.created_at),
            )
        )
        return Verdict(True, None, event)


def active_enrollment(store: VerifierStore, *, tenant: str, subject: str) -> str | None:
    """The subject's most recently confirmed push enrollment, if it has one."""
    with store.engine.connect() as connection:
        found: str | None = connection.execute(
            sa.select(enrollments.c.id)
            .where(
                enrollments.c.tenant == tenant,
                enrollments.c.subject == subject,
                enrollments.c.factor == Factor.PUSH,
                enrollments.c.status == "active",
            )
            .order_by(enrollments.c.confirmed_at.desc(), enrollments.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return found


def send_push(
    store: VerifierStore,
    request: Request,
    *,
    enrollment_id: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    location: str | None = None,
) -> PushChallenge:
    """Start a number-matching push challenge for the subject's device. None is sent
    (:class:`PushRefused`) to a locked subject or push factor (a lock must also stop an
    attacker's prompts reaching the phone); nor while another push to the subject is open:
    each prompt is answered or expires (``ttl``) before the next; nor sooner or more often
    than the tier's ``push_resend`` allows (:mod:`verifiers.resend`: after a prompt that was
    not approved, the next waits 30 s, then twice as long each time, at most 10 an hour), so
    an attacker holding the password cannot wear the person down with prompt after prompt.
    A push refused as too soon or too often is recorded (``mfa.verification.failed`` with the
    reason, no failure for the lockout); one refused to a locked subject is not (the lock is
    on the record)."""
    number = f"{store.entropy.randbelow(90) + 10}"
    challenge_id = f"push-{store.entropy.identifier()}"
    expires_at = request.now + ttl
    salt = secrets.token_bytes(16)
    with store.step(request, factor=Factor.PUSH) as step:
        refusal = _refusal(step)
        if refusal is None:
            step.connection.execute(
                challenges.insert().values(
                    id=challenge_id,
                    tenant=request.tenant,
                    subject=request.subject,
                    factor=Factor.PUSH,
                    purpose="authenticate",
                    enrollment_id=enrollment_id,
                    code_hash=store.box.code_hash(number, salt),
                    salt=salt,
                    data={"location": location},
                    attempts=0,
                    max_attempts=1,
                    created_at=request.now,
                    expires_at=expires_at,
                )
            )
            step.emit(
                ChallengeIssued(
                    factor=Factor.PUSH,
                    challenge_id=challenge_id,
                    channel=Channel.PUSH,
                    enrollment_id=enrollment_id,
                    expires_at=expires_at,
                    number_match=True,
                    max_attempts=1,
                )
            )
        elif refusal.reason != "locked_out":
            step.emit(
                VerificationFailed(
                    factor=Factor.PUSH, reason=refusal.reason, enrollment_id=enrollment_id
                )
            )
    if refusal is not None:
        raise refusal  # after the step: its record of the refusal is committed
    return PushChallenge(
        challenge_id, number, expires_at, request.application, location, request.now
    )


def _refusal(step: Step) -> PushRefused | None:
    """Why no push may be sent to the step's subject now, if it may not (see send_push)."""
    now = step.request.now
    if step.lockout.locked:
        until = step.lockout.until
        return PushRefused("locked_out", until, retry_after(until, now) if until else None)
    if (pending := _pending_until(step)) is not None:
        return PushRefused("push_pending", pending, retry_after(pending, now))
    policy = step.policy.push_resend
    sent = step.sends({Factor.PUSH}, policy.window)
    refused = refuse_send(sent, factor=Factor.PUSH, now=now, policy=policy)
    if refused is None:
        return None
    return PushRefused(refused.reason, refused.retry_at, refused.retry_after(now))


def respond(
    store: VerifierStore,
    request: Request,
    *,
    challenge_id: str,
    decision: Decision,
    number: str | None = None,
    responder: Client | None = None,
) -> Verdict:
    """The person's answer on the phone; only an approval with the right number passes."""
    with store.step(request, factor=Factor.PUSH) as step:
        row = _open_challenge(step, challenge_id)
        if row is None:
            return _failed(step, challenge_id, "unknown_challenge")
        return _decide(step, store, row, decision, number, responder)


def respond_signed(
    store: VerifierStore,
    request: Request,
    *,
    answer: SignedAnswer,
    responder: Client | None = None,
) -> Verdict:
    """The phone's answer, signed with the key of the push enrollment the challenge was sent
    to (:mod:`verifiers.device_keys`). Refused, in this order: ``unknown_challenge``,
    ``locked_out``, ``device_not_enrolled`` (the push went to no enrollment, or it was
    removed), ``unsigned_answer``, ``unknown_device_key`` (signed with another key),
    ``bad_signature`` (forged, or any signed field altered), ``replayed_answer`` (a good
    signature over a challenge already answered; ``expired`` or ``challenge_closed`` for
    one closed unanswered); then as :func:`respond`. A refused
    signature leaves the challenge open for the real device, and counts as a failure."""
    with store.step(request, factor=Factor.PUSH) as step:
        row = _challenge_row(step, answer.challenge_id)
        if row is None:
            return _failed(step, answer.challenge_id, "unknown_challenge")
        if step.lockout.locked:
            step.close_challenge(row.id, "locked_out", attempts=1)  # if it is still open
            return _failed(step, row.id, "locked_out")
        device = _device_key(step, store, row.enrollment_id)
        if device is None:
            return _failed(step, row.id, "device_not_enrolled", row.enrollment_id)
        signed = device_keys.answer_bytes(
            tenant=request.tenant,
            subject=request.subject,
            challenge_id=row.id,
            decision=answer.decision.value,
            number=answer.number,
        )
        problem = device_keys.check_signature(
            device, signed, signature=answer.signature, key_id=answer.key_id
        )
        if problem is not None:
            reason = "unsigned_answer" if problem == "unsigned" else problem
            return _failed(step, row.id, reason, row.enrollment_id)
        if row.closed_at is not None:
            answered = row.closed_reason in ANSWERED
            reason = "replayed_answer" if answered else CLOSED.get(row.closed_reason, "closed")
            return _failed(step, row.id, reason, row.enrollment_id)
        return _decide(step, store, row, answer.decision, answer.number, responder)


def _decide(
    step: Step,
    store: VerifierStore,
    row: sa.Row[Any],
    decision: Decision,
    number: str | None,
    responder: Client | None,
) -> Verdict:
    request, challenge_id = step.request, row.id
    if step.lockout.locked:
        step.close_challenge(challenge_id, "locked_out", attempts=1)
        return _failed(step, challenge_id, "locked_out")
    after_ms = request.ms_since(row.created_at)
    common = {
        "challenge_id": challenge_id,
        "enrollment_id": row.enrollment_id,
        "responded_after_ms": after_ms,
        "responder": responder,
    }
    if request.now >= row.expires_at:
        step.close_challenge(challenge_id, "expired", attempts=1)
        event = step.emit(
            PushExpired(
                challenge_id=challenge_id,
                enrollment_id=row.enrollment_id,
                expired_after_ms=after_ms,
            )
        )
        return Verdict.refused("expired", event, step)
    if decision is Decision.REPORT_FRAUD:
        step.close_challenge(challenge_id, "reported_fraud", attempts=1)
        event = step.emit(PushReportedFraud(**common))
        return Verdict.refused("reported_fraud", event, step)
    if decision is Decision.REJECT:
        step.close_challenge(challenge_id, "rejected", attempts=1)
        event = step.emit(PushRejected(reason="user_rejected", **common))
        return Verdict.refused("user_rejected", event, step)
    matched = number is not None and store.box.code_matches(number.strip(), row.salt, row.code_hash)
    step.close_challenge(challenge_id, "used" if matched else "number_mismatch", attempts=1)
    if not matched:
        event = step.emit(PushRejected(reason="number_mismatch", number_matched=False, **common))
        return Verdict.refused("number_mismatch", event, step)
    event = step.emit(PushApproved(number_matched=True, **common))
    return Verdict(True, None, event)


def expire(store: VerifierStore, request: Request, *, challenge_id: str) -> Verdict:
    """Close an unanswered challenge whose time ran out (called by a sweeper)."""
    with store.step(request, factor=Factor.PUSH, gated=False) as step:
        row = _open_challenge(step, challenge_id)
        if row is None or request.now < row.expires_at:
            return Verdict.refused("not_expirable", None)
        step.close_challenge(challenge_id, "expired", attempts=1)
        event = step.emit(
            PushExpired(
                challenge_id=challenge_id,
                enrollment_id=row.enrollment_id,
                expired_after_ms=request.ms_since(row.created_at),
            )
        )
        return Verdict.refused("expired", event)


def _pending_until(step: Step) -> datetime | None:
    """When the subject's open, unexpired push expires (the latest), if one is open."""
    request = step.request
    found: datetime | None = step.connection.execute(
        sa.select(sa.func.max(challenges.c.expires_at)).where(
            challenges.c.tenant == request.tenant,
            challenges.c.subject == request.subject,
            challenges.c.factor == Factor.PUSH,
            challenges.c.closed_at.is_(None),
            challenges.c.expires_at > request.now,
        )
    ).scalar_one_or_none()
    return found


def _open_challenge(step: Step, challenge_id: str) -> sa.Row[tuple[object, ...]] | None:
    request = step.request
    return step.connection.execute(
        sa.select(challenges).where(
            challenges.c.id == challenge_id,
            challenges.c.tenant == request.tenant,
            challenges.c.subject == request.subject,
            challenges.c.factor == Factor.PUSH,
            challenges.c.closed_at.is_(None),
        )
    ).one_or_none()


def _challenge_row(step: Step, challenge_id: str) -> sa.Row[Any] | None:
    """The subject's push challenge ``challenge_id``, answered or not."""
    if not isinstance(challenge_id, str) or len(challenge_id) > 64:
        return None
    request = step.request
    return step.connection.execute(
        sa.select(challenges).where(
            challenges.c.id == challenge_id,
            challenges.c.tenant == request.tenant,
            challenges.c.subject == request.subject,
            challenges.c.factor == Factor.PUSH,
        )
    ).one_or_none()


def _device_key(step: Step, store: VerifierStore, enrollment_id: str | None) -> bytes | None:
    """The raw public key of the active push enrollment ``enrollment_id``, if it is one."""
    if enrollment_id is None:
        return None
    request = step.request
    row = step.connection.execute(
        sa.select(enrollments.c.id, enrollments.c.secret).where(
            enrollments.c.id == enrollment_id,
            enrollments.c.tenant == request.tenant,
            enrollments.c.subject == request.subject,
            enrollments.c.factor == Factor.PUSH,
            enrollments.c.status == "active",
        )
    ).one_or_none()
    if row is None or row.secret is None:
        return None
    return store.open_enrollment(row.id, row.secret)


def _failed(
    step: Step, challenge_id: str, reason: str, enrollment_id: str | None = None
) -> Verdict:
    event = step.emit(
        VerificationFailed(
            factor=Factor.PUSH,
            reason=reason,
            challenge_id=challenge_id,
            enrollment_id=enrollment_id,
        )
    )
    return Verdict.refused(reason, event, step)

"""One-time codes over SMS, voice and e-mail: enrollment, sending with failover, checking.

:func:`begin_enrollment` / :func:`confirm_enrollment` enrol a phone or mailbox (numbers
normalised to E.164, destinations AES-GCM ciphertexts at rest, masked in events);
:func:`send_code` issues a challenge (gated by the lock and the tier's resend policy),
delivers it outside any transaction with failover, and records each provider's outcome;
:func:`verify_code` checks an answer. A code is 6 digits from :mod:`secrets`, stored only
as :meth:`SecretBox.code_hash`; **the code never appears in an event, a log line, an
exception or a return value**. A refused send or answer is a result with a reason
(:class:`SendResult`, ``Verdict``); a bad destination raises :class:`InvalidDestination`.
Codes, sending, prices and every reason: docs/one-time-codes.md.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from schemas import Event
from schemas.fields import Channel, Factor
from schemas.payloads import (
    ChallengeDeliveryFailed,
    ChallengeIssued,
    ChallengeSent,
    EnrollmentCompleted,
    EnrollmentFailed,
    EnrollmentStarted,
    VerificationFailed,
    VerificationSucceeded,
)
from verifiers.delivery import (
    DeliveryAttempt,
    FailoverDelivery,
    Message,
    NoProviderForChannel,
)
from verifiers.destinations import (
    PHONE_FACTORS,
    InvalidDestination,
    UnsupportedFactor,
    check_destination,
    destination_country,
    mask_destination,
    normalise_email,
    normalise_phone,
    otp_factor,
)
from verifiers.pricing import PRICED_CHANNELS, Price
from verifiers.resend import ResendRefused, refuse_send, retry_after
from verifiers.sendcaps import CapRefused, SendCharges, charge, settle
from verifiers.store import Request, Step, Verdict, VerifierStore
from verifiers.tables import challenges, enrollments

__all__ = [
    "InvalidDestination",
    "OtpEnrollment",
    "SendResult",
    "UnsupportedFactor",
    "begin_enrollment",
    "confirm_enrollment",
    "mask_destination",
    "normalise_email",
    "normalise_phone",
    "send_code",
    "verify_code",
]

log = logging.getLogger(__name__)

CODE_DIGITS = 6
MAX_ANSWER_CHARS = 64
CHANNELS = {Factor.SMS: Channel.SMS, Factor.VOICE: Channel.VOICE, Factor.EMAIL: Channel.EMAIL}
CODE_FACTORS = frozenset(CHANNELS)
"""The factors whose sends share the tier's ``code_resend`` policy."""
_ID = re.compile(r"^(sms|voice|email)-[0-9a-f]{32}$")
_CLOSED = {
    "used": "already_used",
    "superseded": "superseded",
    "expired": "expired",
    "too_many_attempts": "too_many_attempts",
    "undelivered": "undelivered",
}


@dataclass(frozen=True)
class OtpEnrollment:
    """A pending enrollment; the first code sent to it and confirmed activates it."""

    enrollment_id: str
    factor: Factor
    destination: str = field(repr=False)
    """The normalised destination: E.164 phone number or e-mail address."""
    masked_destination: str
    destination_country: str | None


@dataclass(frozen=True)
class SendResult:
    """What became of a request for a code. Never holds the code."""

    sent: bool
    reason: str | None
    factor: Factor
    challenge_id: str | None = None
    expires_at: datetime | None = None
    provider: str | None = None
    resend: bool = False
    attempts: tuple[DeliveryAttempt, ...] = ()
    events: tuple[Event, ...] = ()
    locked_until: datetime | None = None
    retry_after: int | None = None
    """Refused ``locked_out`` (for a while), ``resend_cooldown`` or ``send_limit``: whole
    seconds until a code may be asked for again (for an HTTP ``Retry-After``)."""
    purpose: str | None = None
    """``enroll`` (a code for :func:`confirm_enrollment`) or ``authenticate`` (for
    :func:`verify_code`), once the enrollment is known."""


# -- destinations ------------------------------------------------------------------------


def begin_enrollment(
    store: VerifierStore,
    request: Request,
    *,
    factor: Factor,
    destination: str,
    region: str | None = None,
) -> OtpEnrollment:
    """Record a pending phone (sms/voice) or e-mail enrollment; send it a code next.

    Raises :class:`InvalidDestination` (what is wrong, never the value) before storing.
    """
    factor = otp_factor(factor)
    normalised, country = check_destination(destination, factor, region)
    enrollment_id = f"{factor}-{store.entropy.identifier()}"
    with store.step(request, factor=factor, gated=False) as step:
        step.connection.execute(
            enrollments.insert().values(
                id=enrollment_id,
                tenant=request.tenant,
                subject=request.subject,
                factor=factor,
                status="pending",
                destination=store.seal_enrollment(enrollment_id, normalised.encode()),
                settings={},
                created_at=request.now,
            )
        )
        step.emit(
            EnrollmentStarted(factor=factor, enrollment_id=enrollment_id, channel=CHANNELS[factor])
        )
    return OtpEnrollment(enrollment_id, factor, normalised, mask_destination(normalised), country)


def confirm_enrollment(
    store: VerifierStore, request: Request, *, enrollment_id: str, code: str
) -> Verdict:
    """Activate a pending enrollment with the latest code sent to it."""
    factor = _factor_of(enrollment_id)
    with store.step(request, factor=factor) as step:
        if factor is None:
            return Verdict.refused(
                "locked_out" if step.lockout.locked else "unknown_enrollment", None, step
            )
        if step.lockout.locked:
            return _enrollment_failed(step, factor, enrollment_id, "locked_out")
        enrollment = step.connection.execute(
            sa.select(enrollments).where(
                enrollments.c.id == enrollment_id,
                enrollments.c.tenant == request.tenant,
                enrollments.c.subject == request.subject,
                enrollments.c.status == "pending",
            )
        ).one_or_none()
        if enrollment is None:
            return _enrollment_failed(step, factor, enrollment_id, "unknown_enrollment")
        challenge = step.connection.execute(
            _challenges_of(request)
            .where(challenges.c.enrollment_id == enrollment_id, challenges.c.purpose == "enroll")
            .order_by(challenges.c.created_at.desc())
            .limit(1)
        ).one_or_none()
        if challenge is None:
            return _enrollment_failed(step, factor, enrollment_id, "no_challenge")
        answer = _answer(step, store, challenge, code)
        if answer.reason is not None:
            return _enrollment_failed(step, factor, enrollment_id, answer.reason)
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == enrollment_id)
            .values(status="active", confirmed_at=request.now)
        )
        destination = _open_destination(store, enrollment)
        event = step.emit(
            EnrollmentCompleted(
                factor=factor,
                enrollment_id=enrollment_id,
                channel=CHANNELS[factor],
                destination=mask_destination(destination),
                destination_country=destination_country(destination),
                elapsed_ms=request.ms_since(enrollment.created_at),
            )
        )
        return Verdict(True, None, event)


# -- sending -----------------------------------------------------------------------------


def send_code(
    store: VerifierStore,
    request: Request,
    *,
    factor: Factor,
    delivery: FailoverDelivery,
    enrollment_id: str | None = None,
    charges: SendCharges | None = None,
) -> SendResult:
    """Issue a new code and deliver it (the steps: docs/one-time-codes.md#sending).

    Without ``enrollment_id`` the subject's most recently confirmed enrollment that can
    take ``factor`` is used (a phone enrolled for SMS can also take a voice call, and the
    other way round). A pending enrollment gets an enrollment code for
    :func:`confirm_enrollment`; an active one a sign-in code for :func:`verify_code`.
    ``charges``: price SMS and voice sends and hold them to the tenant's daily caps.
    """
    factor = otp_factor(factor)
    channel = CHANNELS[factor]
    if not delivery.supports(channel):
        raise NoProviderForChannel(f"no delivery provider serves channel {channel}")
    code = f"{store.entropy.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_bytes(16)
    challenge_id = f"{factor}-{store.entropy.identifier()}"
    with store.step(request, factor=factor) as step:
        if step.lockout.locked:
            until = step.lockout.until
            wait = retry_after(until, request.now) if until is not None else None
            return SendResult(False, "locked_out", factor, locked_until=until, retry_after=wait)
        enrollment = _sendable_enrollment(step, factor, enrollment_id)
        if enrollment is None:
            reason = "not_enrolled" if enrollment_id is None else "unknown_enrollment"
            return SendResult(False, reason, factor)
        purpose = "enroll" if enrollment.status == "pending" else "authenticate"
        policy = step.policy
        refused = refuse_send(
            step.sends(CODE_FACTORS, policy.code_resend.window),
            factor=factor,
            now=request.now,
            policy=policy.code_resend,
        )
        if refused is not None:
            return _send_refused(step, factor, purpose, enrollment.id, refused)
        destination = _open_destination(store, enrollment)
        country = destination_country(destination)
        charged: Price | None = None
        if charges is not None and channel in PRICED_CHANNELS:
            names = tuple(p.name for p in delivery.providers_for(channel))
            charged = charges.estimate(channel, names, country)
            over = charge(
                step.connection,
                tenant=request.tenant,
                country=country,
                cost=charged.micros,
                caps=charges.caps,
                now=request.now,
            )
            if over is not None:
                return _send_refused(
                    step,
                    factor,
                    purpose,
                    enrollment.id,
                    over,
                    destination_country=country,
                    cost_micros=charged.micros,
                    currency=charged.currency,
                )
        resend = _supersede(step, purpose)
        expires_at = request.now + policy.code_lifetime
        step.connection.execute(
            challenges.insert().values(
                id=challenge_id,
                tenant=request.tenant,
                subject=request.subject,
                factor=factor,
                purpose=purpose,
                enrollment_id=enrollment.id,
                code_hash=store.box.code_hash(code, salt),
                salt=salt,
                data=_challenge_data(channel, request, country),
                attempts=0,
                max_attempts=policy.otp_max_failures,
                created_at=request.now,
                expires_at=expires_at,
            )
        )
        issued = step.emit(
            ChallengeIssued(
                factor=factor,
                challenge_id=challenge_id,
                channel=channel,
                enrollment_id=enrollment.id,
                expires_at=expires_at,
                max_attempts=policy.otp_max_failures,
            )
        )
    log.info("%s challenge %s issued (resend=%s)", factor, challenge_id, resend)
    message = _message(channel, destination, code, policy.code_lifetime)
    report = delivery.deliver(message)
    events = [issued]
    with store.step(request, factor=factor, gated=False) as step:
        for index, attempt in enumerate(report.attempts):
            if attempt.delivered:
                price = (
                    charges.prices.price(channel, attempt.provider, country)
                    if charged is not None and charges is not None
                    else None
                )
                payload: ChallengeSent | ChallengeDeliveryFailed = ChallengeSent(
                    factor=factor,
                    challenge_id=challenge_id,
                    channel=channel,
                    provider=attempt.provider,
                    destination=mask_destination(destination),
                    destination_country=country,
                    resend=resend,
                    provider_message_id=attempt.message_id,
                    cost_micros=price.micros if price is not None else None,
                    currency=price.currency if price is not None else None,
                )
            else:
                payload = ChallengeDeliveryFailed(
                    factor=factor,
                    challenge_id=challenge_id,
                    channel=channel,
                    provider=attempt.provider,
                    reason=attempt.reason or "provider_error",
                    provider_error=attempt.detail or None,
                    destination_country=country,
                    failover_provider=report.failover_after(index),
                )
            events.append(step.emit(payload))
        delivered = report.delivered
        if charged is not None and charges is not None:
            cost = 0
            if delivered is not None:
                cost = charges.prices.price(channel, delivered.provider, country).micros
            settle(
                step.connection,
                tenant=request.tenant,
                country=country,
                charged=charged.micros,
                cost=cost,
                at=request.now,
            )
        if delivered is None:
            step.close_challenge(challenge_id, "undelivered")
        else:
            step.connection.execute(
                challenges.update()
                .where(challenges.c.id == challenge_id)
                .values(
                    data={
                        **_challenge_data(channel, request, country),
                        "provider": delivered.provider,
                    },
                    provider=delivered.provider,
                    provider_message_id=delivered.message_id,
                )
            )
    return SendResult(
        sent=delivered is not None,
        reason=None if delivered is not None else "delivery_failed",
        factor=factor,
        challenge_id=challenge_id,
        expires_at=expires_at,
        provider=delivered.provider if delivered is not None else None,
        resend=resend,
        attempts=report.attempts,
        events=tuple(events),
        purpose=purpose,
    )


def _message(channel: Channel, destination: str, code: str, lifetime: timedelta) -> Message:
    lasts = _duration(lifetime)
    if channel is Channel.VOICE:
        spoken = ", ".join(code)
        text = f"Your verification code is {spoken}. Again: {spoken}. It expires in {lasts}."
        return Message(channel, destination, text, secrets=(code, spoken))
    text = f"Your verification code is {code}. It expires in {lasts}. Never share it."
    if channel is Channel.EMAIL:
        text += "\n\nIf you did not ask for this code, you can ignore this message.\n"
    return Message(channel, destination, text, secrets=(code,))


def _duration(lifetime: timedelta) -> str:
    seconds = int(lifetime.total_seconds())
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


def _sendable_enrollment(
    step: Step, factor: Factor, enrollment_id: str | None
) -> sa.Row[Any] | None:
    request = step.request
    kinds = sorted(PHONE_FACTORS) if factor in PHONE_FACTORS else [factor]
    query = sa.select(enrollments).where(
        enrollments.c.tenant == request.tenant,
        enrollments.c.subject == request.subject,
        enrollments.c.factor.in_(kinds),
    )
    if enrollment_id is not None:
        query = query.where(
            enrollments.c.id == enrollment_id, enrollments.c.status.in_(["pending", "active"])
        )
    else:
        query = query.where(enrollments.c.status == "active").order_by(
            enrollments.c.confirmed_at.desc(), enrollments.c.id
        )
    return step.connection.execute(query.limit(1)).one_or_none()


def _send_refused(
    step: Step,
    factor: Factor,
    purpose: str,
    enrollment_id: str,
    refused: ResendRefused | CapRefused,
    **money: Any,
) -> SendResult:
    """A send refused as too soon, too often or over the country cap: recorded (a capped
    one with ``money``: the country and what it would have cost at most, the spend the cap
    stopped), nothing stored or sent."""
    if purpose == "enroll":
        payload: EnrollmentFailed | VerificationFailed = EnrollmentFailed(
            factor=factor, enrollment_id=enrollment_id, reason=refused.reason, **money
        )
    else:
        payload = VerificationFailed(
            factor=factor, reason=refused.reason, enrollment_id=enrollment_id, **money
        )
    event = step.emit(payload)
    return SendResult(
        False,
        refused.reason,
        factor,
        events=(event,),
        retry_after=retry_after(refused.retry_at, step.request.now),
    )


def _challenge_data(channel: Channel, request: Request, country: str | None) -> dict[str, Any]:
    """What a challenge row keeps for its later events (a delivery receipt's)."""
    return {
        "channel": channel.value,
        "correlationid": request.correlationid,
        "tier": request.tier.value,
        "country": country,
    }


def _supersede(step: Step, purpose: str) -> bool:
    """Close the subject's open codes of ``purpose``; True if a live one was replaced."""
    now = step.request.now
    open_codes = (
        challenges.c.tenant == step.request.tenant,
        challenges.c.subject == step.request.subject,
        challenges.c.factor.in_(sorted(CHANNELS)),
        challenges.c.purpose == purpose,
        challenges.c.closed_at.is_(None),
    )
    step.connection.execute(
        challenges.update()
        .where(*open_codes, challenges.c.expires_at <= now)
        .values(closed_at=now, closed_reason="expired")
    )
    replaced = step.connection.execute(
        challenges.update().where(*open_codes).values(closed_at=now, closed_reason="superseded")
    )
    return replaced.rowcount > 0


# -- verification ------------------------------------------------------------------------


def verify_code(store: VerifierStore, request: Request, *, challenge_id: str, code: str) -> Verdict:
    """Check a sign-in code: lockout first, then the challenge, then the code.

    An id this module never issues (not ``sms-``/``voice-``/``email-`` and 32 hex digits)
    names no factor, so its refusal carries no event.
    """
    factor = _factor_of(challenge_id)
    with store.step(request, factor=factor) as step:
        if factor is None:
            return Verdict.refused(
                "locked_out" if step.lockout.locked else "unknown_challenge", None, step
            )
        if step.lockout.locked:
            return _failed(step, factor, "locked_out", challenge_id)
        row = step.connection.execute(
            _challenges_of(request).where(
                challenges.c.id == challenge_id,
                challenges.c.factor == factor,
                challenges.c.purpose == "authenticate",
            )
        ).one_or_none()
        if row is None:
            return _failed(step, factor, "unknown_challenge", challenge_id)
        answer = _answer(step, store, row, code)
        if answer.reason is not None:
            return _failed(
                step,
                factor,
                answer.reason,
                challenge_id,
                enrollment_id=row.enrollment_id,
                attempt=answer.attempt,
                attempts_remaining=answer.remaining,
            )
        event = step.emit(
            VerificationSucceeded(
                factor=factor,
                challenge_id=challenge_id,
                enrollment_id=row.enrollment_id,
                attempt=answer.attempt or 1,
                elapsed_ms=request.ms_since(row.created_at),
            )
        )
        return Verdict(True, None, event)


@dataclass(frozen=True)
class _Answer:
    reason: str | None
    attempt: int | None = None
    remaining: int | None = None


def _answer(step: Step, store: VerifierStore, row: Any, code: object) -> _Answer:
    """Judge ``code`` against challenge ``row`` and record the attempt."""
    now = step.request.now
    if row.closed_at is not None:
        return _Answer(_CLOSED.get(row.closed_reason, "unknown_challenge"))
    if now >= row.expires_at:
        step.close_challenge(row.id, "expired")
        return _Answer("expired")
    if row.attempts >= row.max_attempts:
        step.close_challenge(row.id, "too_many_attempts")
        return _Answer("too_many_attempts", remaining=0)
    attempt = row.attempts + 1
    answer = code.strip() if isinstance(code, str) and len(code) <= MAX_ANSWER_CHARS else None
    well_formed = (
        answer is not None and len(answer) == CODE_DIGITS and answer.isascii() and answer.isdigit()
    )
    if well_formed and store.box.code_matches(str(answer), row.salt, row.code_hash):
        closed = step.connection.execute(
            challenges.update()
            .where(challenges.c.id == row.id, challenges.c.closed_at.is_(None))
            .values(attempts=attempt, closed_at=now, closed_reason="used")
        )
        if closed.rowcount == 1:
            return _Answer(None, attempt)
        return _Answer("already_used", attempt)
    remaining = max(row.max_attempts - attempt, 0)
    values: dict[str, Any] = {"attempts": attempt}
    if remaining == 0:
        values.update(closed_at=now, closed_reason="too_many_attempts")
    step.connection.execute(challenges.update().where(challenges.c.id == row.id).values(values))
    return _Answer("invalid_code" if well_formed else "malformed_code", attempt, remaining)


# -- helpers -----------------------------------------------------------------------------


def _factor_of(identifier: object) -> Factor | None:
    """The factor an id of this module names (``sms-…``), or None for any other string."""
    if isinstance(identifier, str) and _ID.match(identifier):
        return Factor(identifier.partition("-")[0])
    return None


def _challenges_of(request: Request) -> sa.Select[Any]:
    return sa.select(challenges).where(
        challenges.c.tenant == request.tenant, challenges.c.subject == request.subject
    )


def _open_destination(store: VerifierStore, enrollment: Any) -> str:
    return store.open_enrollment(enrollment.id, enrollment.destination).decode()


def _failed(step: Step, factor: Factor, reason: str, challenge_id: str, **details: Any) -> Verdict:
    known = {name: value for name, value in details.items() if value is not None}
    event = step.emit(
        VerificationFailed(factor=factor, reason=reason, challenge_id=challenge_id, **known)
    )
    return Verdict.refused(reason, event, step)


def _enrollment_failed(step: Step, factor: Factor, enrollment_id: str, reason: str) -> Verdict:
    event = step.emit(EnrollmentFailed(factor=factor, enrollment_id=enrollment_id, reason=reason))
    return Verdict.refused(reason, event, step)

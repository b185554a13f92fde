"""Auth0 tenant logs mapped to the contract: one log record in, one event or an
:class:`~sources.unmapped.Unmapped` out.

A record is the JSON object of the Management API (``GET /api/v2/logs``) or one item of a
Log Streams custom webhook batch (``{"log_id": …, "data": {…}}``). Which log type becomes
which event is data (:data:`LOG_TYPES`); the codes of challenge deliveries come from the
registry (:mod:`schemas.registry`), the contract's other half of the same fact.

What Auth0 does not say is not invented: the factor is ``unknown`` unless the record names
the authenticator; a failed login with no account has the subject :data:`UNKNOWN_SUBJECT`
and keeps the name typed as personal data; an id Auth0 does not give (a challenge's) is
the log record's own id. Event ids are derived from the source and the log id, so the
same record polled twice or delivered twice is the same event; time is the record's
``date``, never the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Client, Factor, LockoutScope, Outcome
from schemas.registry import BY_NAME, BY_PAYLOAD
from sources.events import (
    UNKNOWN_SUBJECT,
    FactorAndChannel,
    IdpSource,
    MappedRecord,
    RecordOrigin,
    client,
    event_id,
    geo,
    not_mapped,
    not_mapped_rows,
    to_event,
)
from sources.reading import ip_address, name, obj, text, token, utc_time
from sources.unmapped import Unmapped

PROVIDER: Final = "auth0"
__all__ = ["UNKNOWN_SUBJECT", "Auth0Source", "event_id", "map_log", "map_record", "map_records"]


@dataclass(frozen=True)
class Auth0Source(IdpSource):
    """The adapter's configuration: our tenant the events are filed under (Auth0 never
    decides it) and their ``source``, e.g. ``https://acme.eu.auth0.com/`` (the Auth0
    tenant; ids derive from it)."""


@dataclass(frozen=True)
class Auth0Log:
    """The parts of a log record every mapping uses, already checked."""

    log_id: str
    type: str
    time: datetime
    subject: str
    record: Mapping[str, Any]
    details: Mapping[str, Any]

    @property
    def context(self) -> dict[str, Any]:
        """The payload fields every user-facing event carries (application, client)."""
        return {
            "application": name(self.record.get("client_name")),
            "client": _client(self.record),
        }

    @property
    def factor(self) -> Factor:
        return _authenticator(self.details)[0]

    @property
    def channel(self) -> Channel | None:
        return _authenticator(self.details)[1]

    @property
    def subject_known(self) -> bool:
        return self.subject != UNKNOWN_SUBJECT

    @property
    def origin(self) -> RecordOrigin:
        return RecordOrigin(PROVIDER, self.log_id, self.type)


PayloadMaker = Callable[[Auth0Log], p.Payload]

# -- vocabulary --------------------------------------------------------------------------

AUTHENTICATOR_TYPES: Final[Mapping[str, FactorAndChannel]] = {
    "otp": (Factor.TOTP, Channel.AUTHENTICATOR_APP),
    "totp": (Factor.TOTP, Channel.AUTHENTICATOR_APP),
    "sms": (Factor.SMS, Channel.SMS),
    "voice": (Factor.VOICE, Channel.VOICE),
    "email": (Factor.EMAIL, Channel.EMAIL),
    "push": (Factor.PUSH, Channel.PUSH),
    "push-notification": (Factor.PUSH, Channel.PUSH),
    "webauthn-roaming": (Factor.WEBAUTHN, Channel.SECURITY_KEY),
    "webauthn-platform": (Factor.WEBAUTHN, Channel.PLATFORM_AUTHENTICATOR),
    "recovery-code": (Factor.RECOVERY_CODE, Channel.PAPER),
}
"""Auth0's authenticator types (``details.authenticator.type``) as factor and channel: the
Management API's authentication method types (``totp``, ``push-notification``, ``email``,
``webauthn-roaming``, ``webauthn-platform``, ``recovery-code``, …) and Guardian's factor
names (``otp``, ``sms``, ``voice``, ``push``). Absent on purpose: ``phone`` (SMS or
voice), ``guardian`` (the app, not a factor), ``passkey`` and ``password`` (first factors)."""


def _codes_by_channel(event_type: str) -> Mapping[str, Channel]:
    """Auth0 code → channel, read from the registry's entry for ``event_type``."""
    auth0 = BY_NAME[event_type].auth0
    assert auth0 is not None  # noqa: S101 - the registry names these codes
    return {code: Channel(channel) for channel, code in auth0.cases.items()}


SEND_CODES: Final = _codes_by_channel("mfa.challenge.sent")
DELIVERY_FAILURE_CODES: Final = _codes_by_channel("mfa.challenge.delivery_failed")

LOGIN_FAILURES: Final[Mapping[str, str]] = {
    "f": "failed",
    "fp": "invalid_password",
    "fu": "unknown_user",
}
"""Failed-login codes and the reason each states."""

# -- payloads, one small function per meaning ---------------------------------------------


def _enrollment_started(log: Auth0Log) -> p.Payload:
    return p.EnrollmentStarted(
        factor=log.factor, enrollment_id=_enrollment_id(log), channel=log.channel, **log.context
    )


def _enrollment_completed(log: Auth0Log) -> p.Payload:
    return p.EnrollmentCompleted(
        factor=log.factor,
        enrollment_id=_enrollment_id(log),
        channel=log.channel,
        destination=_phone(log.details),
        **log.context,
    )


def _enrollment_failed(factor: Factor | None) -> PayloadMaker:
    def make(log: Auth0Log) -> p.Payload:
        return p.EnrollmentFailed(
            factor=factor or log.factor,
            reason=_failure_reason(log.details, "enrollment_failed"),
            detail=text(log.record.get("description"), 1024),
            **log.context,
        )

    return make


def _enrollment_removed(log: Auth0Log) -> p.Payload:
    return p.EnrollmentRemoved(
        factor=log.factor, enrollment_id=_enrollment_id(log), reason="unenrolled", **log.context
    )


def _challenge_issued(log: Auth0Log) -> p.Payload:
    return p.ChallengeIssued(
        factor=log.factor, challenge_id=log.log_id, channel=log.channel, **log.context
    )


def _challenge_sent(log: Auth0Log) -> p.Payload:
    channel = SEND_CODES[log.type]
    return p.ChallengeSent(
        factor=Factor(channel.value),
        challenge_id=log.log_id,
        channel=channel,
        provider=PROVIDER,
        destination=_phone(log.details),
        **log.context,
    )


def _delivery_failed(log: Auth0Log) -> p.Payload:
    channel = DELIVERY_FAILURE_CODES[log.type]
    error = obj(log.details.get("provider_error")) or obj(log.details.get("failure_details"))
    return p.ChallengeDeliveryFailed(
        factor=Factor(channel.value),
        challenge_id=log.log_id,
        channel=channel,
        provider=PROVIDER,
        reason=_failure_reason(log.details, "delivery_failed"),
        provider_error=text(error.get("message"), 1024)
        or text(log.record.get("description"), 1024),
        **log.context,
    )


def _verification_succeeded(log: Auth0Log) -> p.Payload:
    return p.VerificationSucceeded(factor=log.factor, **log.context)


def _verification_failed(factor: Factor | None) -> PayloadMaker:
    def make(log: Auth0Log) -> p.Payload:
        return p.VerificationFailed(
            factor=factor or log.factor,
            reason=_failure_reason(log.details, "failed"),
            **log.context,
        )

    return make


def _push_rejected(log: Auth0Log) -> p.Payload:
    return p.PushRejected(challenge_id=log.log_id, reason="user_rejected", **log.context)


def _recovery_failed(log: Auth0Log) -> p.Payload:
    return p.RecoveryFailed(reason="invalid_code", **log.context)


def _mfa_required(log: Auth0Log) -> p.Payload:
    return p.MfaRequired(required=True, **log.context)


def _login(outcome: Outcome, reason: str | None) -> PayloadMaker:
    def make(log: Auth0Log) -> p.Payload:
        return p.LoginAttempted(
            outcome=outcome,
            method=name(log.record.get("strategy")) or "unknown",
            reason=reason,
            attempted_name=None if log.subject_known else text(log.record.get("user_name"), 320),
            **log.context,
        )

    return make


def _lock(scope: LockoutScope, reason: str) -> PayloadMaker:
    """Auth0's brute-force and rate-limit blocks, as Auth0 says them: no failure count and no
    end (Auth0 gives neither); a factor block names the factor Auth0 names, else ``unknown``."""

    def make(log: Auth0Log) -> p.Payload:
        return p.IdpLockReported(
            provider=PROVIDER,
            scope=scope,
            reason=reason,
            factor=log.factor if scope is LockoutScope.FACTOR else None,
            ip=ip_address(log.record.get("ip")) if scope is LockoutScope.IP else None,
            detail=text(log.record.get("description"), 1024),
            **log.context,
        )

    return make


def _unblocked(log: Auth0Log) -> p.Payload:
    return p.IdpUnlockReported(
        provider=PROVIDER, scope=LockoutScope.SUBJECT, reason="user_block_released", **log.context
    )


LOG_TYPES: Final[Mapping[str, PayloadMaker]] = {
    "gd_start_enroll": _enrollment_started,
    "gd_enrollment_complete": _enrollment_completed,
    "gd_start_enroll_failed": _enrollment_failed(None),
    "gd_webauthn_enrollment_failed": _enrollment_failed(Factor.WEBAUTHN),
    "gd_unenroll": _enrollment_removed,
    "gd_start_auth": _challenge_issued,
    **{code: _challenge_sent for code in SEND_CODES},
    **{code: _delivery_failed for code in DELIVERY_FAILURE_CODES},
    "gd_auth_succeed": _verification_succeeded,
    "gd_auth_failed": _verification_failed(None),
    "gd_webauthn_challenge_failed": _verification_failed(Factor.WEBAUTHN),
    "gd_auth_rejected": _push_rejected,
    "gd_recovery_failed": _recovery_failed,
    "mfar": _mfa_required,
    "s": _login(Outcome.SUCCESS, None),
    **{code: _login(Outcome.FAILURE, reason) for code, reason in LOGIN_FAILURES.items()},
    "limit_wc": _lock(LockoutScope.IP, "blocked_account"),
    "limit_mu": _lock(LockoutScope.IP, "blocked_ip_address"),
    "limit_sul": _lock(LockoutScope.SUBJECT, "blocked_user"),
    "gd_otp_rate_limit_exceed": _lock(LockoutScope.FACTOR, "too_many_failures"),
    "ublkdu": _unblocked,
}
"""Auth0 log type → the payload it becomes (the event type follows from the payload).

Blocks and unblocks are the provider's own reports (``idp.lock.reported`` /
``idp.unlock.reported``): ``limit_wc`` blocks an IP for one account (scope ip, the subject
is the account), ``limit_mu`` an IP for every account (scope ip), ``limit_sul`` a user
(scope subject), ``gd_otp_rate_limit_exceed`` a user's OTP factor (scope factor: the factor
Auth0 names in ``details.authenticator``, else ``unknown``, the contract's word for a factor
the source does not name), ``ublkdu`` releases the user's blocks (scope subject)."""

SUBJECT_OPTIONAL: Final = frozenset({*LOGIN_FAILURES, "limit_wc", "limit_mu"})
"""Log types whose subject is :data:`UNKNOWN_SUBJECT` when the record names no user: failed
logins of names that match no account, and IP blocks (``limit_mu`` concerns many accounts)."""

CONTRACT_GAPS: Final[Mapping[str, str]] = {
    "gd_recovery_succeed": "mfa.recovery.succeeded requires codes_remaining; Auth0 does not "
    "say how many recovery codes are left",
    "pwd_leak": "Auth0 does not say whether the login with a breached password was refused "
    "or only noted (it depends on the tenant's settings)",
}
"""MFA-related log types the contract cannot carry yet without inventing facts."""

NO_CONTRACT_TYPE: Final[Mapping[str, str]] = {
    "gd_auth_email_verification": "e-mail verification inside Guardian has no event type",
    "gd_send_email_verification": "e-mail verification inside Guardian has no event type",
    "gd_update_device_account": "a Guardian device account update has no event type",
    "gd_tenant_update": "a Guardian tenant settings change has no event type",
}
"""MFA-adjacent log types with no event type in the contract."""

# -- the mapping --------------------------------------------------------------------------


def map_log(record: Any, source: Auth0Source) -> Event | Unmapped:
    """One Auth0 log record as one of our events, or :class:`Unmapped` with the reason.

    Never raises for any JSON value: an event returned has been through the codec.
    """
    if not isinstance(record, Mapping):
        return _unmapped(None, None, "not_an_object", "a log record is a JSON object")
    if "type" not in record and isinstance(record.get("data"), Mapping):
        record = record["data"]  # a Log Streams webhook item
    log_id = token(record.get("log_id")) or token(record.get("_id"))
    log_type = record.get("type") if isinstance(record.get("type"), str) else None
    if log_id is None:
        return _unmapped(None, log_type, "missing_log_id", "no log_id (or _id) to derive an id")
    if log_type is None:
        return _unmapped(log_id, None, "missing_type", "no type (the Auth0 log event code)")
    make = LOG_TYPES.get(log_type)
    if make is None:
        origin = RecordOrigin(PROVIDER, log_id, log_type)
        return not_mapped(origin, CONTRACT_GAPS, NO_CONTRACT_TYPE, "not an MFA-related log type")
    time = utc_time(record.get("date"))
    if time is None:
        return _unmapped(log_id, log_type, "invalid_date", "date is not an ISO 8601 time")
    subject = _subject(record, log_type)
    if subject is None:
        return _unmapped(log_id, log_type, "missing_subject", "no usable user_id")
    details = obj(record.get("details"))
    log = Auth0Log(log_id, log_type, time, subject, record, details)
    return to_event(
        log.origin,
        source,
        lambda: make(log),
        subject=log.subject,
        correlation=_correlation(log),
        time=log.time,
    )


map_record = map_log
"""The name every provider module shares: one record, one event or :class:`Unmapped`."""


def map_records(record: Any, source: Auth0Source) -> list[MappedRecord]:
    """Every event one record becomes: for Auth0 always exactly one result."""
    return [map_log(record, source)]


def _unmapped(log_id: str | None, log_type: str | None, reason: str, detail: str) -> Unmapped:
    return Unmapped(PROVIDER, log_id, log_type, reason, detail)


# -- reading a record --------------------------------------------------------------------

_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _subject(record: Mapping[str, Any], log_type: str) -> str | None:
    user_id = token(record.get("user_id"))
    if user_id is None and log_type in SUBJECT_OPTIONAL:
        return UNKNOWN_SUBJECT
    return user_id


def _correlation(log: Auth0Log) -> str:
    """Auth0's correlation id when the record has one, else the record itself."""
    references = obj(log.record.get("references"))
    return (
        token(log.record.get("correlation_id"))
        or token(references.get("correlation_id"))
        or log.log_id
    )


def _authenticator(details: Mapping[str, Any]) -> tuple[Factor, Channel | None]:
    kind = obj(details.get("authenticator")).get("type")
    known = AUTHENTICATOR_TYPES.get(kind) if isinstance(kind, str) else None
    return known or (Factor.UNKNOWN, None)


def _enrollment_id(log: Auth0Log) -> str:
    """Guardian's enrollment id, else the authenticator's, else the log record's id."""
    enrollment = obj(log.details.get("enrollment"))
    authenticator = obj(log.details.get("authenticator"))
    return token(enrollment.get("_id")) or token(authenticator.get("id")) or log.log_id


def _phone(details: Mapping[str, Any]) -> str | None:
    for holder in ("authenticator", "enrollment"):
        number = text(obj(details.get(holder)).get("phone_number"), 320)
        if number is not None:
            return number
    return None


def _failure_reason(details: Mapping[str, Any], default: str) -> str:
    """Guardian's error code (e.g. ``invalid_otp``) when it is one, else ``default``."""
    for holder in ("failure_details", "provider_error"):
        code = obj(details.get(holder)).get("errorCode")
        if isinstance(code, str) and _REASON.fullmatch(code):
            return code
    return default


def _client(record: Mapping[str, Any]) -> Client | None:
    """The request context; ``location_info`` (country_code, city_name, latitude, longitude)."""
    location = obj(record.get("location_info"))
    place = geo(
        PROVIDER,
        country=location.get("country_code"),
        city=location.get("city_name"),
        latitude=location.get("latitude"),
        longitude=location.get("longitude"),
    )
    return client(record.get("ip"), record.get("user_agent"), place)


# -- the reference ------------------------------------------------------------------------

_STUB_RECORD: Final = {"ip": "192.0.2.1"}  # an IP lock names the IP


def event_type_of(log_type: str) -> str:
    """The event type a mapped log type becomes (the payload its maker builds decides)."""
    stub = Auth0Log(log_type, log_type, datetime(2000, 1, 1, tzinfo=UTC), "s", _STUB_RECORD, {})
    return BY_PAYLOAD[type(LOG_TYPES[log_type](stub))].name


def reference() -> str:
    """The Auth0 part of ``docs/sources.md``: every log type mapped, the MFA ones that are not."""
    lines = [
        "## Auth0",
        "",
        "Records: the Management API's log objects (`GET /api/v2/logs`) or Log Streams webhook",
        "items. Event ids derive from the source and Auth0's `log_id`; time is the record's",
        "`date`. The factor is `unknown` unless the record names the authenticator",
        "(`details.authenticator.type`). Blocks are Auth0's own reports: `limit_wc` blocks an IP",
        "for one account, `limit_mu` an IP, `limit_sul` a user, `gd_otp_rate_limit_exceed` a",
        "user's OTP factor (`unknown` unless named), `ublkdu` releases a user's blocks. A",
        "reported IP block holds for the reporting tenant's sign-ins only (`ip.block.applied`",
        "with `only_tenant`): one tenant's adapter cannot block an address tenants share.",
        "",
        "| Auth0 log type | event |",
        "|---|---|",
        *(f"| `{code}` | `{event_type_of(code)}` |" for code in sorted(LOG_TYPES)),
        "",
        "MFA-related, not mapped (yet):",
        "",
        *not_mapped_rows("Auth0 log type", CONTRACT_GAPS, NO_CONTRACT_TYPE),
        "",
        "Every other log type is `not_mfa`. A record without a log id, a type, a `date` with",
        "an offset or (except failed logins and IP blocks) a `user_id` is unmapped with that",
        "reason.",
        "",
    ]
    return "\n".join(lines)

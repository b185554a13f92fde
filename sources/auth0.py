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

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from schemas import Event, decode, encode, new_event, uuid7
from schemas import payloads as p
from schemas.errors import SchemaError
from schemas.fields import Channel, Client, Factor, Geo, Outcome
from schemas.registry import BY_NAME, BY_PAYLOAD
from sources.reading import (
    country_code,
    degrees,
    ip_address,
    name,
    obj,
    text,
    token,
    utc_time,
)
from sources.unmapped import Unmapped

PROVIDER: Final = "auth0"
UNKNOWN_SUBJECT: Final = "unknown"
"""The subject of a failed login whose name matched no account."""


@dataclass(frozen=True)
class Auth0Source:
    """The adapter's configuration: whose logs these are and where they come from."""

    tenant: str
    """Our tenant id the events are filed under (Auth0 never decides it)."""
    source: str
    """The events' ``source``, e.g. ``https://acme.eu.auth0.com/`` (the Auth0 tenant)."""


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


PayloadMaker = Callable[[Auth0Log], p.Payload]

# -- vocabulary --------------------------------------------------------------------------

AUTHENTICATOR_TYPES: Final[Mapping[str, tuple[Factor, Channel | None]]] = {
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
}
"""Auth0 log type → the payload it becomes (the event type follows from the payload)."""

CONTRACT_GAPS: Final[Mapping[str, str]] = {
    "gd_recovery_succeed": "mfa.recovery.succeeded requires codes_remaining; Auth0 does not "
    "say how many recovery codes are left",
    "gd_otp_rate_limit_exceed": "a factor lock is lockout.applied, which only the pipeline "
    "derives, and it requires the failure count Auth0 does not give",
    "limit_wc": "an IP blocked for one account is lockout.applied (scope ip), which only the "
    "pipeline derives, and it requires the failure count Auth0 does not give",
    "limit_sul": "a blocked user is lockout.applied (scope subject), which only the pipeline "
    "derives, and it requires the failure count Auth0 does not give",
    "limit_mu": "a blocked IP is ip.block.applied, which only the pipeline derives, and it "
    "requires blocked_until and counts Auth0 does not give",
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
        return _not_mapped(log_id, log_type)
    time = utc_time(record.get("date"))
    if time is None:
        return _unmapped(log_id, log_type, "invalid_date", "date is not an ISO 8601 time")
    subject = _subject(record, log_type)
    if subject is None:
        return _unmapped(log_id, log_type, "missing_subject", "no usable user_id")
    details = obj(record.get("details"))
    log = Auth0Log(log_id, log_type, time, subject, record, details)
    return _event(log, make, source)


def event_id(source: str, log_id: str, time: datetime) -> str:
    """The event id of a log record: a UUIDv7 at ``time`` whose random bits are a hash of
    the source and the log id, so a record polled or delivered again has the same id."""
    digest = hashlib.sha256(f"{source}|{log_id}".encode()).digest()
    return uuid7(time, random_bits=int.from_bytes(digest[:10], "big") >> 6)


def _event(log: Auth0Log, make: PayloadMaker, source: Auth0Source) -> Event | Unmapped:
    try:
        event = new_event(
            make(log),
            source=source.source,
            tenant=source.tenant,
            subject=log.subject,
            correlationid=_correlation(log),
            now=log.time,
            event_id=event_id(source.source, log.log_id, log.time),
        )
        return decode(encode(event))
    except (SchemaError, ValueError, TypeError, OverflowError, msgspec.MsgspecError) as exc:
        return _unmapped(log.log_id, log.type, "invalid_record", str(exc)[:1024])


def _not_mapped(log_id: str, log_type: str) -> Unmapped:
    if log_type in CONTRACT_GAPS:
        return _unmapped(log_id, log_type, "contract_gap", CONTRACT_GAPS[log_type])
    if log_type in NO_CONTRACT_TYPE:
        return _unmapped(log_id, log_type, "no_contract_type", NO_CONTRACT_TYPE[log_type])
    return _unmapped(log_id, log_type, "not_mfa", "not an MFA-related log type")


def _unmapped(log_id: str | None, log_type: str | None, reason: str, detail: str) -> Unmapped:
    return Unmapped(PROVIDER, log_id, log_type, reason, detail)


# -- reading a record --------------------------------------------------------------------

_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _subject(record: Mapping[str, Any], log_type: str) -> str | None:
    user_id = token(record.get("user_id"))
    if user_id is None and log_type in LOGIN_FAILURES:
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
    ip = ip_address(record.get("ip"))
    user_agent = text(record.get("user_agent"), 1024)
    geo = _geo(obj(record.get("location_info")))
    if ip is None and user_agent is None and geo is None:
        return None
    return Client(ip=ip, user_agent=user_agent, geo=geo)


def _geo(location: Mapping[str, Any]) -> Geo | None:
    """Auth0's ``location_info`` (country_code, city_name, latitude, longitude)."""
    geo = Geo(
        country=country_code(location.get("country_code")),
        city=name(location.get("city_name")),
        latitude=degrees(location.get("latitude"), 90),
        longitude=degrees(location.get("longitude"), 180),
        source=PROVIDER,
    )
    return geo if (geo.country, geo.city, geo.latitude, geo.longitude) != (None,) * 4 else None


# -- the reference ------------------------------------------------------------------------


def event_type_of(log_type: str) -> str:
    """The event type a mapped log type becomes (the payload its maker builds decides)."""
    stub = Auth0Log(log_type, log_type, datetime(2000, 1, 1, tzinfo=UTC), "s", {}, {})
    return BY_PAYLOAD[type(LOG_TYPES[log_type](stub))].name


def reference() -> str:
    """``docs/sources.md``: every Auth0 log type mapped, and the MFA ones that are not."""
    lines = [
        "# Sources: identity providers' logs",
        "",
        "<!-- Generated by `factorstream docs` from sources/auth0.py; do not edit. -->",
        "",
        "`factorstream idp map auth0 FILE --tenant T --source URI` shows what a file of Auth0",
        "log records (one JSON object a line) becomes, without sending anything. Event ids",
        "derive from the source and Auth0's log id (the same record twice is the same event);",
        "time is the record's `date`. The factor is `unknown` unless the record names the",
        "authenticator (`details.authenticator.type`); a failed login with no account has the",
        f"subject `{UNKNOWN_SUBJECT}` and keeps the name typed in `attempted_name` (personal).",
        "",
        "## Auth0: mapped",
        "",
        "| Auth0 log type | event |",
        "|---|---|",
        *(f"| `{code}` | `{event_type_of(code)}` |" for code in sorted(LOG_TYPES)),
        "",
        "## Auth0: MFA-related, not mapped (yet)",
        "",
        "| Auth0 log type | reason | why |",
        "|---|---|---|",
        *(f"| `{code}` | `contract_gap` | {why} |" for code, why in sorted(CONTRACT_GAPS.items())),
        *(
            f"| `{code}` | `no_contract_type` | {why} |"
            for code, why in sorted(NO_CONTRACT_TYPE.items())
        ),
        "",
        "Every other log type is `not_mfa`. A record without a log id, a type, a `date` with",
        "an offset or (except failed logins) a `user_id` is unmapped with that reason.",
        "",
    ]
    return "\n".join(lines)

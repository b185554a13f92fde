"""Okta System Log events mapped to the contract: one LogEvent in, one event or an
:class:`~sources.unmapped.Unmapped` out.

A record is a LogEvent object as the System Log API (``GET /api/v1/logs``) answers it or as
an Event Hook delivers it (``{"data": {"events": [LogEvent, …]}}``; :func:`map_records`
takes a whole delivery, or a page of the API as a JSON array). Which event type becomes
which event, by its ``outcome.result``, is data (:data:`EVENT_TYPES`).

What Okta does not say is not invented: the factor is ``unknown`` unless the record names
it (``debugContext.debugData.factor``, or ``authenticationContext.credentialType`` for SMS
and e-mail); the subject is the target user, else the acting user; a failed sign-in of a
name that matches no account (``outcome.reason`` ``UNKNOWN_USER``) has the subject
``unknown`` and keeps the name typed (``actor.alternateId``) as personal data; the country
is left out, as Okta gives its name, not its ISO code. Event ids derive from the source and
the event's ``uuid``; time is ``published``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Client, Factor, LockoutScope, Outcome
from schemas.registry import BY_PAYLOAD
from sources.events import (
    UNKNOWN_SUBJECT,
    FactorAndChannel,
    IdpSource,
    MappedRecord,
    RecordOrigin,
    client,
    geo,
    not_mapped,
    not_mapped_rows,
    to_event,
)
from sources.reading import name, obj, reason_code, text, token, utc_time
from sources.unmapped import Unmapped

PROVIDER: Final = "okta"
ANY: Final = "*"
"""In :data:`EVENT_TYPES`: whatever the outcome."""


@dataclass(frozen=True)
class OktaSource(IdpSource):
    """The adapter's configuration: our tenant the events are filed under (Okta never
    decides it) and their ``source``, e.g. ``https://acme.okta.com/`` (the Okta org; ids
    derive from it)."""


@dataclass(frozen=True)
class OktaEvent:
    """The parts of a LogEvent every mapping uses, already checked."""

    uuid: str
    type: str
    outcome: str
    time: datetime
    subject: str
    record: Mapping[str, Any]

    @property
    def debug(self) -> Mapping[str, Any]:
        return obj(obj(self.record.get("debugContext")).get("debugData"))

    @property
    def reason(self) -> str | None:
        """``outcome.reason`` as a snake_case reason (``INVALID_CREDENTIALS`` →
        ``invalid_credentials``), when it is a code rather than a sentence."""
        return reason_code(obj(self.record.get("outcome")).get("reason"))

    @property
    def context(self) -> dict[str, Any]:
        return {"application": _application(self.record), "client": _client(self.record)}

    @property
    def factor(self) -> Factor:
        return _factor(self.record)[0]

    @property
    def channel(self) -> Channel | None:
        return _factor(self.record)[1]

    @property
    def origin(self) -> RecordOrigin:
        return RecordOrigin(PROVIDER, self.uuid, self.type)


PayloadMaker = Callable[[OktaEvent], p.Payload]

# -- vocabulary --------------------------------------------------------------------------

FACTORS: Final[Mapping[str, FactorAndChannel]] = {
    "push": (Factor.PUSH, Channel.PUSH),
    "okta_verify_push": (Factor.PUSH, Channel.PUSH),
    "sms": (Factor.SMS, Channel.SMS),
    "call": (Factor.VOICE, Channel.VOICE),
    "email": (Factor.EMAIL, Channel.EMAIL),
    "token:software:totp": (Factor.TOTP, Channel.AUTHENTICATOR_APP),
    "webauthn": (Factor.WEBAUTHN, None),
    "u2f": (Factor.WEBAUTHN, Channel.SECURITY_KEY),
}
"""Okta's factor names (``debugContext.debugData.factor``, compared in lower case) as
factor and channel: the Factors API's factor types (``push``, ``sms``, ``call``, ``email``,
``token:software:totp``, ``webauthn``, ``u2f``) and the System Log's ``OKTA_VERIFY_PUSH``.
Absent on purpose: ``question`` (knowledge, not a factor of ours), ``signed_nonce``
(FastPass, a device-bound credential), hardware and third-party tokens (not TOTP as such)."""

CREDENTIAL_TYPES: Final[Mapping[str, tuple[Factor, Channel]]] = {
    "SMS": (Factor.SMS, Channel.SMS),
    "EMAIL": (Factor.EMAIL, Channel.EMAIL),
}
"""``authenticationContext.credentialType`` values that name one of our factors (``OTP``
does not say which kind of one-time password)."""

LOGIN_METHODS: Final[Mapping[str, str]] = {
    "user.session.start": "okta",
    "user.authentication.sso": "sso",
}
"""Sign-in event types and the ``method`` their login events carry."""

# -- payloads, one small function per meaning ---------------------------------------------


def _enrollment_completed(event: OktaEvent) -> p.Payload:
    return p.EnrollmentCompleted(
        factor=event.factor,
        enrollment_id=_enrollment_id(event),
        channel=event.channel,
        **event.context,
    )


def _enrollment_removed(reason: str, *, all_factors: bool = False) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.EnrollmentRemoved(
            factor=Factor.UNKNOWN if all_factors else event.factor,
            enrollment_id=_enrollment_id(event),
            reason=reason,
            removed_by=_acting_other(event),
            **event.context,
        )

    return make


def _challenge_sent(channel: Channel) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.ChallengeSent(
            factor=Factor(channel.value),
            challenge_id=event.uuid,
            channel=channel,
            provider=PROVIDER,
            **event.context,
        )

    return make


def _delivery_failed(channel: Channel) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.ChallengeDeliveryFailed(
            factor=Factor(channel.value),
            challenge_id=event.uuid,
            channel=channel,
            provider=PROVIDER,
            reason=event.reason or "delivery_failed",
            provider_error=text(obj(event.record.get("outcome")).get("reason"), 1024),
            **event.context,
        )

    return make


def _verification_succeeded(event: OktaEvent) -> p.Payload:
    return p.VerificationSucceeded(factor=event.factor, **event.context)


def _verification_failed(reason: str | None) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.VerificationFailed(
            factor=event.factor if reason is None else Factor.UNKNOWN,
            reason=reason or event.reason or "failed",
            **event.context,
        )

    return make


def _push_rejected(event: OktaEvent) -> p.Payload:
    return p.PushRejected(challenge_id=event.uuid, reason="user_rejected", **event.context)


def _mfa_required(event: OktaEvent) -> p.Payload:
    return p.MfaRequired(required=True, reasons=["sign_on_policy"], **event.context)


def _login(outcome: Outcome) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        failed = outcome is Outcome.FAILURE
        actor = obj(event.record.get("actor"))
        return p.LoginAttempted(
            outcome=outcome,
            method=LOGIN_METHODS[event.type],
            reason=(event.reason or "failed") if failed else None,
            attempted_name=(
                text(actor.get("alternateId"), 320) if event.subject == UNKNOWN_SUBJECT else None
            ),
            **event.context,
        )

    return make


def _lock(reason: str) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.IdpLockReported(
            provider=PROVIDER,
            scope=LockoutScope.SUBJECT,
            reason=reason,
            detail=text(event.record.get("displayMessage"), 1024),
            **event.context,
        )

    return make


def _unlock(reason: str) -> PayloadMaker:
    def make(event: OktaEvent) -> p.Payload:
        return p.IdpUnlockReported(
            provider=PROVIDER, scope=LockoutScope.SUBJECT, reason=reason, **event.context
        )

    return make


def _both(maker: PayloadMaker) -> Mapping[str, PayloadMaker]:
    return {ANY: maker}


def _sent(channel: Channel) -> Mapping[str, PayloadMaker]:
    return {"SUCCESS": _challenge_sent(channel), "FAILURE": _delivery_failed(channel)}


def _signed_in() -> Mapping[str, PayloadMaker]:
    return {"SUCCESS": _login(Outcome.SUCCESS), "FAILURE": _login(Outcome.FAILURE)}


EVENT_TYPES: Final[Mapping[str, Mapping[str, PayloadMaker]]] = {
    "user.mfa.factor.activate": _both(_enrollment_completed),
    "user.mfa.factor.deactivate": _both(_enrollment_removed("deactivated")),
    "user.mfa.factor.reset_all": _both(_enrollment_removed("reset_all", all_factors=True)),
    "user.authentication.auth_via_mfa": {
        "SUCCESS": _verification_succeeded,
        "FAILURE": _verification_failed(None),
    },
    "user.mfa.attempt_bypass": _both(_verification_failed("bypass_attempt")),
    "user.mfa.okta_verify.deny_push": _both(_push_rejected),
    "system.push.send_factor_verify_push": _sent(Channel.PUSH),
    "system.sms.send_factor_verify_message": _sent(Channel.SMS),
    "system.sms.send_phone_verification_message": _sent(Channel.SMS),
    "system.voice.send_mfa_challenge_call": _sent(Channel.VOICE),
    "system.voice.send_phone_verification_call": _sent(Channel.VOICE),
    "system.email.send_factor_verify_message": _sent(Channel.EMAIL),
    "policy.evaluate_sign_on": {"CHALLENGE": _mfa_required},
    "user.session.start": _signed_in(),
    "user.authentication.sso": _signed_in(),
    "user.account.lock": _both(_lock("locked_out")),
    "user.account.lock.limit": _both(_lock("lock_limit")),
    "user.account.unlock": _both(_unlock("unlocked")),
    "user.account.unlock_by_admin": _both(_unlock("unlocked_by_admin")),
}
"""Okta event type → outcome (``outcome.result``, or :data:`ANY`) → the payload it becomes.

A deactivated or reset factor is ``mfa.enrollment.removed`` (``reset_all``: every factor,
so ``unknown``); an attempt to skip the MFA step is a failed verification of an unknown
factor (reason ``bypass_attempt``); a sign-on policy's ``CHALLENGE`` is ``mfa.required``; a
lock is Okta's own report (scope subject), as is an unlock."""

CONTRACT_GAPS: Final[Mapping[str, str]] = {
    "security.threat.detected": "idp.risk.reported requires a risk level; ThreatInsight "
    "gives the action it took (outcome.result ALLOW, DENY, RATE_LIMIT), not a level",
}
"""MFA-related event types the contract cannot carry yet without inventing facts."""

NO_CONTRACT_TYPE: Final[Mapping[str, str]] = {
    "user.mfa.factor.suspend": "a suspended factor has no event type",
    "user.mfa.factor.unsuspend": "a factor taken back from suspension has no event type",
    "user.mfa.factor.update": "a factor's changed settings have no event type",
    "user.mfa.okta_verify.deny_push_upgrade_needed": "a push refused because Okta Verify "
    "must be upgraded is no person's answer and has no event type",
    "user.account.unlock_failure": "a failed unlock has no event type",
    "system.email.mfa_reset_notification.sent_message": "a notice that factors were reset "
    "has no event type (the reset itself is user.mfa.factor.reset_all)",
    "user.risk.change": "a change of a user's risk level is no verdict on a sign-in "
    "(idp.risk.reported) and has no event type",
}
"""MFA-adjacent event types with no event type in the contract."""

# -- the mapping --------------------------------------------------------------------------


def map_record(record: Any, source: OktaSource) -> Event | Unmapped:
    """One Okta LogEvent as one of our events, or :class:`Unmapped` with the reason.

    Never raises for any JSON value: an event returned has been through the codec.
    """
    if not isinstance(record, Mapping):
        return _unmapped(None, None, "not_an_object", "a LogEvent is a JSON object")
    if _delivered(record) is not None:
        return _unmapped(None, None, "batch", "an Event Hook delivery: map_records maps it")
    uuid = token(record.get("uuid"))
    event_type = record.get("eventType") if isinstance(record.get("eventType"), str) else None
    if uuid is None:
        return _unmapped(None, event_type, "missing_record_id", "no uuid to derive an id")
    if event_type is None:
        return _unmapped(uuid, None, "missing_type", "no eventType")
    by_outcome = EVENT_TYPES.get(event_type)
    if by_outcome is None:
        origin = RecordOrigin(PROVIDER, uuid, event_type)
        return not_mapped(origin, CONTRACT_GAPS, NO_CONTRACT_TYPE, "not an MFA-related event type")
    result = obj(record.get("outcome")).get("result")
    outcome = result.upper() if isinstance(result, str) else ""
    make = by_outcome.get(outcome) or by_outcome.get(ANY)
    if make is None:
        detail = f"outcome.result {outcome or 'missing'} of {event_type} becomes no event"
        return _unmapped(uuid, event_type, "outcome_not_mapped", detail)
    time = utc_time(record.get("published"))
    if time is None:
        return _unmapped(uuid, event_type, "invalid_date", "published is not an ISO 8601 time")
    subject = _subject(record, event_type)
    if subject is None:
        return _unmapped(uuid, event_type, "missing_subject", "no user among target and actor")
    event = OktaEvent(uuid, event_type, outcome, time, subject, record)
    return to_event(
        event.origin,
        source,
        lambda: make(event),
        subject=subject,
        correlation=_correlation(record) or uuid,
        time=time,
    )


def map_records(record: Any, source: OktaSource) -> list[MappedRecord]:
    """Every event a delivery holds: an Event Hook delivery (``data.events``), a page of the
    System Log API (a JSON array) or a single LogEvent."""
    items = record if isinstance(record, list) else _delivered(record)
    if items is None:
        return [map_record(record, source)]
    return [map_record(item, source) for item in items]


def _delivered(record: Any) -> list[Any] | None:
    """The LogEvents of an Event Hook delivery (``data.events``; a LogEvent has no ``data``)."""
    events = obj(obj(record).get("data")).get("events")
    return events if isinstance(events, list) else None


def _unmapped(uuid: str | None, event_type: str | None, reason: str, detail: str) -> Unmapped:
    return Unmapped(PROVIDER, uuid, event_type, reason, detail)


# -- reading a record --------------------------------------------------------------------


def _targets(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    targets = record.get("target")
    return [obj(target) for target in targets] if isinstance(targets, list) else []


def _users(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The users a record names: its targets of type ``User``, then its actor if a user."""
    found = [target for target in _targets(record) if target.get("type") == "User"]
    actor = obj(record.get("actor"))
    return [*found, actor] if actor.get("type") == "User" else found


def _subject(record: Mapping[str, Any], event_type: str) -> str | None:
    """The target user (whose factor, whose lock), else the acting user; ``unknown`` for a
    sign-in Okta refused because the name matched no account."""
    reason = obj(record.get("outcome")).get("reason")
    if event_type in LOGIN_METHODS and reason == "UNKNOWN_USER":
        return UNKNOWN_SUBJECT
    for user in _users(record):
        user_id = token(user.get("id"))
        if user_id is not None and user_id != UNKNOWN_SUBJECT:
            return user_id
    return None


def _acting_other(event: OktaEvent) -> str | None:
    """The actor's id when someone other than the subject acted (an administrator)."""
    actor = token(obj(event.record.get("actor")).get("id"))
    return actor if actor is not None and actor != event.subject else None


def _correlation(record: Mapping[str, Any]) -> str | None:
    """Okta's session (``authenticationContext.externalSessionId``), else the request's
    transaction id: what ties a push, its answer and the sign-in together."""
    session = token(obj(record.get("authenticationContext")).get("externalSessionId"))
    if session is not None and session != UNKNOWN_SUBJECT:
        return session
    return token(obj(record.get("transaction")).get("id"))


def _factor(record: Mapping[str, Any]) -> tuple[Factor, Channel | None]:
    debug = obj(obj(record.get("debugContext")).get("debugData"))
    named = debug.get("factor")
    known = FACTORS.get(named.lower()) if isinstance(named, str) else None
    if known is not None:
        return known
    credential = obj(record.get("authenticationContext")).get("credentialType")
    by_credential = CREDENTIAL_TYPES.get(credential) if isinstance(credential, str) else None
    return by_credential or (Factor.UNKNOWN, None)


def _enrollment_id(event: OktaEvent) -> str:
    """The enrolled authenticator's id when a target is one, else the LogEvent's uuid."""
    for target in _targets(event.record):
        if target.get("type") == "AuthenticatorEnrollment" and token(target.get("id")):
            return str(target["id"])
    return event.uuid


def _application(record: Mapping[str, Any]) -> str | None:
    """The application signed in to: a target of type ``AppInstance``."""
    for target in _targets(record):
        if target.get("type") == "AppInstance":
            return name(target.get("displayName"))
    return None


def _client(record: Mapping[str, Any]) -> Client | None:
    """``client``: ``ipAddress``, ``userAgent.rawUserAgent`` and ``geographicalContext``
    (``city``, ``state``, ``geolocation.lat``/``lon``; ``country`` is a name, left out)."""
    context = obj(record.get("client"))
    where = obj(context.get("geographicalContext"))
    position = obj(where.get("geolocation"))
    place = geo(
        PROVIDER,
        region=where.get("state"),
        city=where.get("city"),
        latitude=position.get("lat"),
        longitude=position.get("lon"),
    )
    agent = obj(context.get("userAgent")).get("rawUserAgent")
    return client(context.get("ipAddress"), agent, place)


# -- the reference ------------------------------------------------------------------------


def event_type_of(event_type: str, outcome: str) -> str:
    """The event type a mapped Okta event type becomes for an outcome."""
    record = {"target": [{"type": "User", "id": "u"}]}
    stub = OktaEvent("u", event_type, outcome, datetime(2000, 1, 1, tzinfo=UTC), "u", record)
    return BY_PAYLOAD[type(EVENT_TYPES[event_type][outcome](stub))].name


def reference() -> str:
    """The Okta part of ``docs/sources.md``."""
    rows = [
        f"| `{kind}` | {'any' if outcome == ANY else f'`{outcome}`'} | "
        f"`{event_type_of(kind, outcome)}` |"
        for kind in sorted(EVENT_TYPES)
        for outcome in EVENT_TYPES[kind]
    ]
    lines = [
        "## Okta",
        "",
        "Records: System Log LogEvents (`GET /api/v1/logs`), or Event Hook deliveries",
        "(`data.events`, mapped event by event). Event ids derive from the source and the",
        "event's `uuid`; time is `published`. The subject is the target user, else the acting",
        "user; a sign-in refused with `UNKNOWN_USER` has the subject `unknown` and keeps",
        "`actor.alternateId` as `attempted_name` (personal). The factor comes from",
        "`debugContext.debugData.factor` (or `authenticationContext.credentialType` SMS and",
        "EMAIL), else `unknown`. Okta gives the country's name, not its code: it is left out.",
        "",
        "| Okta event type | outcome.result | event |",
        "|---|---|---|",
        *rows,
        "",
        "An outcome not listed is unmapped (`outcome_not_mapped`). MFA-related, not mapped",
        "(yet):",
        "",
        *not_mapped_rows("Okta event type", CONTRACT_GAPS, NO_CONTRACT_TYPE),
        "",
        "Every other event type is `not_mfa`.",
        "",
    ]
    return "\n".join(lines)

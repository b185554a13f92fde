"""What the detections read from events, the keys they partition by, and ``risk.detected``.

Keys: per-subject folds run on ``partitionkey`` (``tenant/subject``, the Kafka key, so the
stream needs no re-keying); password spray runs per client IP and SMS pumping per tenant,
so the stream re-keys those events through an internal topic by :func:`spray_key` and
:func:`sms_pumping_key`, which return ``None`` for events their fold ignores (nothing to
re-key).

Scores and severities: each detection scores 0..100 and the severity follows from the
score (:func:`severity_for`): 90+ critical, 70+ high, 40+ medium, 1+ low.

Personal data: ``evidence`` is not encrypted per subject in the ledger (only fields marked
personal are), so it never holds an IP, a device id, coordinates or a city; those stay in
``client``, which is marked personal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from schemas import Event
from schemas import payloads as p
from schemas.envelope import derive_event
from schemas.fields import Client, Factor, Outcome, RiskLevel
from schemas.payloads import Detection, EvidenceValue
from streams.folds.thresholds import IpAddress, parse_ip

SOURCE = "factorstream://detections"
"""``source`` of every ``risk.detected`` the folds derive."""

OTP_CODE_FACTORS = frozenset({Factor.TOTP, Factor.SMS, Factor.VOICE, Factor.EMAIL})
"""Factors whose secret is a short code someone can guess."""

SEVERITY_RANK = {level: rank for rank, level in enumerate(RiskLevel)}
"""none < low < medium < high < critical."""


def payload_kinds(*classes: type) -> Callable[[object], type | None]:
    """``kind_of(data)``: the first of ``classes`` that ``data`` is an instance of (as a chain
    of ``isinstance`` finds it), else ``None``, worked out once per class of ``data``.
    ``isinstance`` is quick when it holds for the object's own class, but not against
    msgspec classes when it does not (their metaclass is asked): each miss costs several
    dictionary look-ups, and a chain of them runs for every event."""
    known: dict[type, type | None] = {}

    def kind_of(data: object) -> type | None:
        kind = type(data)
        try:
            return known[kind]
        except KeyError:
            found = known[kind] = next((c for c in classes if issubclass(kind, c)), None)
            return found

    return kind_of


def subject_key(event: Event) -> str:
    """Key of the per-subject folds: ``tenant/subject`` (the Kafka key already)."""
    return event.partitionkey


def client_ip(event: Event) -> IpAddress | None:
    """The request's IP address (IPv4-mapped IPv6 as IPv4), if the event carries one."""
    client = client_of(event)
    if client is None or client.ip is None:
        return None
    try:
        return parse_ip(client.ip)
    except ValueError:  # the codec validated it; a hand-built event may not be
        return None


def spray_key(event: Event) -> str | None:
    """Key of password spray: the IP of a failed first-factor login, else ``None``."""
    data = event.data
    if _LOGIN(data) is None or cast(p.LoginAttempted, data).outcome is not Outcome.FAILURE:
        return None
    address = client_ip(event)
    return None if address is None else str(address)


def sms_pumping_key(event: Event) -> str | None:
    """Key of SMS pumping: the tenant of an ``mfa.challenge.sent``, else ``None`` (the fold
    then checks the channel against ``sms_channels``)."""
    return event.tenant if _SENT(event.data) is not None else None


_LOGIN = payload_kinds(p.LoginAttempted)
_SENT = payload_kinds(p.ChallengeSent)


SIGN_IN_COMPLETIONS: tuple[type[p.Payload], ...] = (
    p.LoginAttempted,
    p.VerificationSucceeded,
    p.RecoverySucceeded,
    p.PushApproved,
)
"""The payloads of the events that may complete a sign-in (see :func:`completed_sign_in`)."""


def completed_sign_in(event: Event) -> bool:
    """A sign-in that succeeded as a whole: an accepted second factor, a recovery code, an
    approved push, or a password success that needed no MFA (the lockout fold's notion of
    a completed login)."""
    data = event.data
    kind = _COMPLETIONS(data)
    if kind is p.LoginAttempted:
        login = cast(p.LoginAttempted, data)
        return login.outcome is Outcome.SUCCESS and login.mfa_required is not True
    return kind is not None


_COMPLETIONS = payload_kinds(*SIGN_IN_COMPLETIONS)  # LoginAttempted first, as tested above


def client_of(event: Event) -> Client | None:
    client = getattr(event.data, "client", None)
    return client if type(client) is Client or isinstance(client, Client) else None


def severity_for(score: int) -> RiskLevel:
    if score >= 90:
        return RiskLevel.CRITICAL
    if score >= 70:
        return RiskLevel.HIGH
    if score >= 40:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW if score > 0 else RiskLevel.NONE


def escalated(base: int, observed: float, threshold: float, *, top: int) -> int:
    """``base`` at the threshold, 10 more per doubling beyond it, at most ``top``."""
    if observed <= threshold or threshold <= 0:
        return base
    return min(top, base + int(10 * math.log2(observed / threshold)))


def risk_detected(
    trigger: Event,
    detection: Detection,
    *,
    score: int,
    summary: str,
    evidence: Mapping[str, EvidenceValue],
    related: Iterable[str],
    max_related: int,
    what: str = "",
) -> Event:
    """A ``risk.detected`` derived from ``trigger`` (deterministic id, the trigger's envelope:
    time, tenant, subject, correlation). ``what`` tells apart two firings of one detection on
    one trigger; ``related`` is trimmed to its ``max_related`` last ids (duplicates once)."""
    ids = list(dict.fromkeys(related))
    if len(ids) > max_related:
        ids = ids[-max_related:]
    payload = p.RiskDetected(
        detection=detection,
        severity=severity_for(score),
        score=score,
        summary=summary,
        evidence=dict(evidence),
        related_event_ids=ids,
        client=client_of(trigger),
    )
    return derive_event(trigger, payload, source=SOURCE, what=f"{detection}/{what}")

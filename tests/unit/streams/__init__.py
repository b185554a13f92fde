"""Unit tests of the pure stream folds, and the event builders they share.

:class:`Log` builds events with deterministic ids (a serial number as the random bits of
the UUIDv7), so golden files are byte-stable; :func:`replay` is ``functools.reduce`` of a
fold over events.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from schemas import Event, new_event, uuid7
from schemas import payloads as p
from schemas.fields import Channel, Client, Device, Factor, Geo, Outcome, RiskLevel
from schemas.payloads import Detection
from streams.folds.thresholds import DetectionThresholds, NetworkList

S = TypeVar("S")
Fold = Callable[[S, Event, DetectionThresholds], tuple[S, list[Event]]]

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Place(NamedTuple):
    country: str
    latitude: float
    longitude: float
    source: str = "client"


BERLIN = Place("DE", 52.52, 13.405)
POTSDAM = Place("DE", 52.3906, 13.0645)
PARIS = Place("FR", 48.8566, 2.3522)
SYDNEY = Place("AU", -33.8688, 151.2093)
NEW_YORK = Place("US", 40.7128, -74.006)
GERMANY_CENTROID = Place("DE", 51.1657, 10.4515, "centroid")
AUSTRALIA_CENTROID = Place("AU", -25.2744, 133.7751, "centroid")


def client(
    place: Place | None = BERLIN,
    *,
    ip: str = "203.0.113.7",
    device: str | None = "dev-1",
    coordinates: bool = True,
) -> Client:
    geo = None
    if place is not None:
        geo = Geo(
            country=place.country,
            latitude=place.latitude if coordinates else None,
            longitude=place.longitude if coordinates else None,
            source=place.source,
        )
    kind = Device(id=device, kind="mobile", os="iOS", browser="Safari") if device else None
    return Client(ip=ip, user_agent="pytest", device=kind, geo=geo)


class Log:
    """Events of a tenant's subjects with deterministic ids (one serial across subjects)."""

    def __init__(self, tenant: str = "acme", subject: str = "u-1001") -> None:
        self.tenant, self.subject, self.serial = tenant, subject, 0

    def event(
        self,
        payload: p.Payload,
        at: datetime,
        *,
        subject: str | None = None,
        tenant: str | None = None,
        correlationid: str | None = None,
    ) -> Event:
        self.serial += 1
        return new_event(
            payload,
            source="https://login.example.com/mfa",
            tenant=tenant or self.tenant,
            subject=subject or self.subject,
            correlationid=correlationid or f"login-{self.serial}",
            now=at,
            event_id=uuid7(at, random_bits=self.serial),
        )

    def sign_in(
        self,
        at: datetime,
        place: Place | None = BERLIN,
        *,
        device: str | None = "dev-1",
        ip: str = "203.0.113.7",
        coordinates: bool = True,
        **envelope: Any,
    ) -> Event:
        """A completed sign-in: an accepted TOTP code."""
        where = client(place, ip=ip, device=device, coordinates=coordinates)
        return self.event(p.VerificationSucceeded(factor=Factor.TOTP, client=where), at, **envelope)

    def login(
        self, at: datetime, *, ok: bool = False, ip: str = "203.0.113.7", **envelope: Any
    ) -> Event:
        data = p.LoginAttempted(
            outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
            method="password",
            reason=None if ok else "invalid_password",
            mfa_required=False if ok else None,
            client=client(ip=ip),
        )
        return self.event(data, at, **envelope)

    def failed_login_from(self, at: datetime, place: Place) -> Event:
        data = p.LoginAttempted(
            outcome=Outcome.FAILURE,
            method="password",
            reason="invalid_password",
            client=client(place),
        )
        return self.event(data, at)

    def push(self, at: datetime, answer: str) -> Event:
        if answer == "rejected":
            return self.event(p.PushRejected(challenge_id="ch-1", reason="user_rejected"), at)
        if answer == "expired":
            return self.event(p.PushExpired(challenge_id="ch-1", expired_after_ms=60_000), at)
        return self.event(p.PushApproved(challenge_id="ch-1", number_matched=True), at)

    def code(
        self, at: datetime, factor: Factor = Factor.TOTP, reason: str = "invalid_code"
    ) -> Event:
        return self.event(p.VerificationFailed(factor=factor, reason=reason), at)

    def recovery(self, at: datetime, reason: str | None = "unknown_code") -> Event:
        if reason is None:
            return self.event(p.RecoverySucceeded(codes_remaining=7), at)
        return self.event(p.RecoveryFailed(reason=reason), at)

    def sms(
        self, at: datetime, country: str | None, *, channel: Channel = Channel.SMS, **envelope: Any
    ) -> Event:
        factor = Factor.VOICE if channel is Channel.VOICE else Factor.SMS
        data = p.ChallengeSent(
            factor=factor,
            challenge_id=f"ch-{self.serial + 1}",
            channel=channel,
            provider="twilio",
            destination_country=country,
        )
        return self.event(data, at, **envelope)

    def webauthn(
        self,
        at: datetime,
        *,
        ok: bool,
        count: int | None,
        previous: int | None,
        flags: Iterable[str] = (),
        enrollment: str = "enr-key-1",
    ) -> Event:
        if ok:
            data: p.Payload = p.VerificationSucceeded(
                factor=Factor.WEBAUTHN,
                enrollment_id=enrollment,
                sign_count=count,
                previous_sign_count=previous,
                flags=list(flags),
            )
        else:
            data = p.VerificationFailed(
                factor=Factor.WEBAUTHN,
                reason="sign_count_regression",
                enrollment_id=enrollment,
                sign_count=count,
                previous_sign_count=previous,
            )
        return self.event(data, at)

    def removed(self, at: datetime, factor: Factor = Factor.TOTP) -> Event:
        data = p.EnrollmentRemoved(factor=factor, enrollment_id="enr-1", reason="user_request")
        return self.event(data, at)

    def regenerated(self, at: datetime) -> Event:
        return self.event(p.RecoveryRegenerated(code_count=10, previous_codes_invalidated=10), at)

    def risk(
        self, at: datetime, detection: Detection, severity: RiskLevel, score: int = 50
    ) -> Event:
        data = p.RiskDetected(
            detection=detection, severity=severity, score=score, summary=f"{detection} (test)"
        )
        return self.event(data, at)


def replay(
    fold: Fold[S], start: S, events: Iterable[Event], thresholds: DetectionThresholds
) -> tuple[S, list[Event]]:
    """``functools.reduce`` of ``fold`` over ``events``: the final state, all derived."""

    def step(acc: tuple[S, list[Event]], event: Event) -> tuple[S, list[Event]]:
        state, derived = fold(acc[0], event, thresholds)
        return state, acc[1] + derived

    initial: tuple[S, list[Event]] = (start, [])
    return functools.reduce(step, events, initial)


def detections(derived: Iterable[Event]) -> list[str]:
    return [str(risk_of(e).detection) for e in derived]


def risk_of(event: Event) -> p.RiskDetected:
    assert isinstance(event.data, p.RiskDetected), event.type
    return event.data


def thresholds_from(overrides: Mapping[str, Any]) -> DetectionThresholds:
    """Thresholds from JSON-friendly overrides: seconds for durations, lists for sets and
    networks (``{"name": …, "entries": […]}``)."""
    defaults = {f.name: f.default for f in fields(DetectionThresholds)}
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        default = defaults[name]
        if isinstance(default, timedelta):
            values[name] = timedelta(seconds=value)
        elif isinstance(default, NetworkList):
            values[name] = NetworkList.parse(value["entries"], name=value["name"])
        elif isinstance(default, frozenset):
            values[name] = frozenset(value)
        else:
            values[name] = value
    return DetectionThresholds(**values)

"""Risk at sign-in: a subject's profile folded from the event log, and the score of one sign-in.

Pure: no I/O, no clock (``now`` and the sign-in's time are parameters), nothing of the
stream engine. The MFA service keeps the profiles current from Kafka
(:mod:`verifiers.service.stream_view`); anything else may fold a log with
:func:`fold_profile` and score with :func:`assess_risk`. A profile (per
``tenant/subject``) learns from completed sign-ins, locks and detections; IP blocks
belong to no subject (:class:`IpBlocks`). The score is the points of every factor that
applies (:data:`POINTS`), capped at 100. What a profile learns, and the levels:
docs/mfa-service.md#the-subjects-risk-profile.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.fields import Client, Factor, LockoutScope, Outcome, PolicyTier, RiskLevel
from verifiers.policy import (
    TIERS,
    AccessContext,
    Location,
    MfaDecision,
    Sensitivity,
    TierPolicy,
    decide_mfa,
)

EARTH_RADIUS_KM = 6371.0088
HOURS = 24


class RiskFactor(StrEnum):
    """What can make a sign-in risky."""

    SUBJECT_LOCKED = "subject_locked"
    IP_BLOCKED = "ip_blocked"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    MALICIOUS_IP = "malicious_ip"
    ANONYMOUS_IP = "anonymous_ip"
    RECENT_DETECTIONS = "recent_detections"
    NEW_COUNTRY = "new_country"
    NEW_DEVICE = "new_device"
    UNUSUAL_HOUR = "unusual_hour"


POINTS: Mapping[RiskFactor, int] = MappingProxyType(
    {
        RiskFactor.SUBJECT_LOCKED: 70,
        RiskFactor.IP_BLOCKED: 70,
        RiskFactor.IMPOSSIBLE_TRAVEL: 60,
        RiskFactor.MALICIOUS_IP: 60,
        RiskFactor.ANONYMOUS_IP: 30,
        RiskFactor.RECENT_DETECTIONS: 30,  # high or critical; medium 15, low 5
        RiskFactor.NEW_COUNTRY: 25,
        RiskFactor.NEW_DEVICE: 20,
        RiskFactor.UNUSUAL_HOUR: 10,
    }
)
DETECTION_POINTS: Mapping[RiskLevel, int] = MappingProxyType(
    {
        RiskLevel.CRITICAL: 30,
        RiskLevel.HIGH: 30,
        RiskLevel.MEDIUM: 15,
        RiskLevel.LOW: 5,
        RiskLevel.NONE: 0,
    }
)
HIGH_FROM, MEDIUM_FROM = 60, 30


@dataclass(frozen=True)
class RiskThresholds:
    """The knobs of the profile and the score."""

    learning_sign_ins: int = 3
    """Completed sign-ins before new country, new device and unusual hour score."""
    travel_max_speed_kmh: float = 1000.0
    travel_min_distance_km: float = 500.0
    travel_min_elapsed: timedelta = timedelta(minutes=5)
    detection_window: timedelta = timedelta(hours=24)
    """How long a ``risk.detected`` counts towards a sign-in's score."""
    unusual_hour_min_sign_ins: int = 10
    """An hour is unusual for a subject with this many sign-ins, none within an hour of it."""
    max_known: int = 32
    """Countries, devices and networks remembered per subject (least recently seen go)."""
    max_detections: int = 16
    max_open_logins: int = 4
    anonymous_networks: tuple[str, ...] = ()
    """CIDR blocks of anonymising networks (Tor exits, open proxies, VPN ranges)."""
    malicious_networks: tuple[str, ...] = ()
    _anonymous: _Index = field(init=False, repr=False, compare=False, default=())
    _malicious: _Index = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_anonymous", _index(self.anonymous_networks))
        object.__setattr__(self, "_malicious", _index(self.malicious_networks))

    def anonymous(self, ip: str | None) -> bool:
        return _listed(ip, self._anonymous)

    def malicious(self, ip: str | None) -> bool:
        return _listed(ip, self._malicious)


_Index = tuple[tuple[int, int, frozenset[int]], ...]
"""(IP version, prefix length, network addresses): one set probe per prefix length."""


def _index(networks: Iterable[str]) -> _Index:
    found: dict[tuple[int, int], set[int]] = {}
    for text in networks:
        network = ipaddress.ip_network(text.strip(), strict=False)
        found.setdefault((network.version, network.prefixlen), set()).add(
            int(network.network_address)
        )
    return tuple((v, length, frozenset(a)) for (v, length), a in sorted(found.items()))


def _listed(ip: str | None, index: _Index) -> bool:
    address = _address(ip) if ip is not None and index else None
    if address is None:
        return False
    value, bits = int(address), 32 if address.version == 4 else 128
    return any(
        (value >> (bits - length) << (bits - length)) in addresses
        for version, length, addresses in index
        if version == address.version
    )


# -- the profile -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where and when a successful sign-in happened."""

    at: datetime
    latitude: float
    longitude: float
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Lock:
    until: datetime | None
    permanent: bool
    reason: str

    def active(self, now: datetime) -> bool:
        return self.permanent or (self.until is not None and now < self.until)


@dataclass(frozen=True, slots=True)
class Finding:
    """One ``risk.detected`` of the subject."""

    detection: str
    severity: RiskLevel
    score: int
    at: datetime


Seen = tuple[tuple[str, datetime], ...]


@dataclass(frozen=True)
class SubjectProfile:
    """What the log says about one subject."""

    sign_ins: int = 0
    countries: Seen = ()
    devices: Seen = ()
    networks: Seen = ()
    hours: tuple[int, ...] = (0,) * HOURS
    last_place: Place | None = None
    last_sign_in: datetime | None = None
    subject_lock: Lock | None = None
    factor_locks: Mapping[Factor, Lock] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    last_correlation: str | None = None
    open_logins: tuple[tuple[str, Client], ...] = ()
    """(correlationid, client) of the latest logins that needed MFA, newest first: the
    verification completing one may not repeat its device and place."""

    def knows(self, kind: str, value: str | None) -> bool:
        return value is not None and any(v == value for v, _ in getattr(self, kind))


EMPTY = SubjectProfile()


def _remember(seen: Seen, value: str | None, at: datetime, limit: int) -> Seen:
    if value is None:
        return seen
    kept = [(v, t) for v, t in seen if v != value] + [(value, at)]
    kept.sort(key=lambda item: item[1])
    return tuple(kept[-limit:])


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(ip: str | None) -> str | None:
    """The network a sign-in comes from: an IPv4 /24 or an IPv6 /48."""
    address = _address(ip) if ip is not None else None
    if address is None:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def completed_sign_in(event: Event) -> bool:
    """An accepted second factor, a recovery code, an approved push, or a password success
    that needed no MFA (as the stream's detections read it)."""
    data = event.data
    if isinstance(data, p.LoginAttempted):
        return data.outcome is Outcome.SUCCESS and data.mfa_required is not True
    return isinstance(data, p.VerificationSucceeded | p.RecoverySucceeded | p.PushApproved)


def fold_profile(
    profile: SubjectProfile, event: Event, thresholds: RiskThresholds
) -> SubjectProfile:
    """Apply one event of the subject (any other event leaves the profile as it is)."""
    data = event.data
    if isinstance(data, p.LockoutApplied):
        lock = Lock(data.locked_until, data.permanent, data.reason)
        if data.scope is LockoutScope.SUBJECT:
            return replace(profile, subject_lock=lock)
        if data.scope is LockoutScope.FACTOR and data.factor is not None:
            return replace(profile, factor_locks={**profile.factor_locks, data.factor: lock})
        return profile
    if isinstance(data, p.LockoutCleared):
        if data.scope is LockoutScope.SUBJECT:
            return replace(profile, subject_lock=None)
        if data.scope is LockoutScope.FACTOR and data.factor is not None:
            locks = {f: lock for f, lock in profile.factor_locks.items() if f is not data.factor}
            return replace(profile, factor_locks=locks)
        return profile
    if isinstance(data, p.RiskDetected):
        finding = Finding(str(data.detection), data.severity, data.score, event.time)
        return replace(profile, findings=(*profile.findings, finding)[-thresholds.max_detections :])
    completed = completed_sign_in(event)
    client: Client | None = getattr(data, "client", None)
    if not completed:
        if client is None or not isinstance(data, p.LoginAttempted | p.MfaRequired):
            return profile
        if isinstance(data, p.LoginAttempted) and data.outcome is not Outcome.SUCCESS:
            return profile
        others = tuple(o for o in profile.open_logins if o[0] != event.correlationid)
        opened = ((event.correlationid, client), *others)[: thresholds.max_open_logins]
        return replace(profile, open_logins=opened)
    if event.correlationid is not None and event.correlationid == profile.last_correlation:
        return profile  # a second completion of one login transaction counts once
    login = next((c for cid, c in profile.open_logins if cid == event.correlationid), None)
    geo = _first(client, login, "geo")
    found_device = _first(client, login, "device")
    device = found_device.id if found_device is not None else None
    ip = client.ip if client is not None and client.ip is not None else None
    if ip is None and login is not None:
        ip = login.ip
    at, limit = event.time, thresholds.max_known
    hours = list(profile.hours)
    hours[at.hour] += 1
    place = profile.last_place
    if geo is not None and geo.latitude is not None and geo.longitude is not None:
        place = Place(at, geo.latitude, geo.longitude, geo.country)
    return replace(
        profile,
        sign_ins=profile.sign_ins + 1,
        countries=_remember(profile.countries, geo.country if geo else None, at, limit),
        devices=_remember(profile.devices, device, at, limit),
        networks=_remember(profile.networks, network_of(ip), at, limit),
        hours=tuple(hours),
        last_place=place,
        last_sign_in=at,
        last_correlation=event.correlationid,
        open_logins=tuple(o for o in profile.open_logins if o[0] != event.correlationid),
    )


def _first(client: Client | None, login: Client | None, name: str) -> Any:
    """``client.<name>``, else the login's (the sign-in's context as first recorded)."""
    for source in (client, login):
        value = getattr(source, name, None) if source is not None else None
        if value is not None:
            return value
    return None


def fold_profiles(events: Iterable[Event], thresholds: RiskThresholds) -> dict[str, SubjectProfile]:
    """Profiles by ``partitionkey`` (``tenant/subject``) after ``events``, in order."""
    profiles: dict[str, SubjectProfile] = {}
    for event in events:
        key = event.partitionkey
        profiles[key] = fold_profile(profiles.get(key, EMPTY), event, thresholds)
    return profiles


@dataclass(frozen=True)
class IpBlocks:
    """The IP blocks the stream applied: the platform's (address → until when), for every
    tenant, and those a tenant's identity provider reported ((tenant, address) → until
    when), for that tenant's sign-ins alone."""

    blocked: Mapping[str, datetime] = field(default_factory=dict)
    reported: Mapping[tuple[str, str], datetime] = field(default_factory=dict)

    def until(self, ip: str | None, now: datetime, tenant: str | None = None) -> datetime | None:
        """The end of the block of ``ip`` in force at ``now`` for a sign-in of ``tenant``
        (the later of the platform's and the tenant's), if any."""
        address = _address(ip) if ip is not None else None
        if address is None:
            return None
        ends = [self.blocked.get(str(address))]
        if tenant is not None:
            ends.append(self.reported.get((tenant, str(address))))
        live = [end for end in ends if end is not None and now < end]
        return max(live) if live else None


def fold_ip_blocks(blocks: IpBlocks, event: Event) -> IpBlocks:
    data = event.data
    if isinstance(data, p.IpBlockApplied):
        address = str(_address(data.ip))
        if data.only_tenant is not None:
            key = (data.only_tenant, address)
            until = max(data.blocked_until, blocks.reported.get(key, data.blocked_until))
            live = {k: t for k, t in blocks.reported.items() if t > event.time}  # no release
            return replace(blocks, reported={**live, key: until})
        until = max(data.blocked_until, blocks.blocked.get(address, data.blocked_until))
        return replace(blocks, blocked={**blocks.blocked, address: until})
    if isinstance(data, p.IpBlockReleased):  # the platform's blocks alone are released
        address = str(_address(data.ip))
        blocked = {a: t for a, t in blocks.blocked.items() if a != address}
        return replace(blocks, blocked=blocked)
    return blocks


# -- the score ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """The sign-in to assess: what the caller knows of it."""

    at: datetime
    ip: str | None = None
    device_id: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("SignIn.at must be timezone-aware (UTC)")


@dataclass(frozen=True)
class Contribution:
    factor: RiskFactor
    points: int
    detail: str


@dataclass(frozen=True)
class RiskAssessment:
    score: int
    level: RiskLevel
    contributions: tuple[Contribution, ...]
    familiar_location: bool
    """The country or the network is one the subject signed in from before."""
    familiar_device: bool

    def has(self, factor: RiskFactor) -> bool:
        return any(c.factor is factor for c in self.contributions)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def level_of(score: int) -> RiskLevel:
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    return RiskLevel.MEDIUM if score >= MEDIUM_FROM else RiskLevel.LOW


def _travel(profile: SubjectProfile, sign_in: SignIn, t: RiskThresholds) -> str | None:
    last = profile.last_place
    if last is None or sign_in.latitude is None or sign_in.longitude is None:
        return None
    distance = haversine_km(last.latitude, last.longitude, sign_in.latitude, sign_in.longitude)
    elapsed = max(abs(sign_in.at - last.at), t.travel_min_elapsed)
    speed = distance / (elapsed.total_seconds() / 3600)
    if distance < t.travel_min_distance_km or speed <= t.travel_max_speed_kmh:
        return None
    return (
        f"{distance:,.0f} km from the last sign-in ({last.country or '??'}) in "
        f"{abs(sign_in.at - last.at).total_seconds() / 60:,.0f} min: {speed:,.0f} km/h"
    )


def _unusual_hour(profile: SubjectProfile, hour: int, t: RiskThresholds) -> bool:
    if sum(profile.hours) < t.unusual_hour_min_sign_ins:
        return False
    return not any(profile.hours[(hour + d) % HOURS] for d in (-1, 0, 1))


def assess_risk(
    sign_in: SignIn,
    profile: SubjectProfile,
    *,
    ip_blocked_until: datetime | None,
    thresholds: RiskThresholds,
) -> RiskAssessment:
    """Score ``sign_in`` against the subject's ``profile`` (at ``sign_in.at``)."""
    now, t = sign_in.at, thresholds
    found: list[Contribution] = []

    def add(factor: RiskFactor, detail: str, points: int | None = None) -> None:
        found.append(Contribution(factor, POINTS[factor] if points is None else points, detail))

    lock = profile.subject_lock
    if lock is not None and lock.active(now):
        add(RiskFactor.SUBJECT_LOCKED, f"locked ({lock.reason})")
    if ip_blocked_until is not None:
        add(RiskFactor.IP_BLOCKED, f"the IP is blocked until {ip_blocked_until.isoformat()}")
    if (trip := _travel(profile, sign_in, t)) is not None:
        add(RiskFactor.IMPOSSIBLE_TRAVEL, trip)
    if t.malicious(sign_in.ip):
        add(RiskFactor.MALICIOUS_IP, "the IP is on the malicious networks list")
    if t.anonymous(sign_in.ip):
        add(RiskFactor.ANONYMOUS_IP, "the IP is on the anonymous networks list")
    recent = [f for f in profile.findings if timedelta(0) <= now - f.at <= t.detection_window]
    if recent:
        worst = max(recent, key=lambda f: DETECTION_POINTS[f.severity])
        names = ", ".join(sorted({f.detection for f in recent}))
        add(RiskFactor.RECENT_DETECTIONS, names, DETECTION_POINTS[worst.severity])
    learned = profile.sign_ins >= t.learning_sign_ins
    known_country = profile.knows("countries", sign_in.country)
    known_network = profile.knows("networks", network_of(sign_in.ip))
    known_device = profile.knows("devices", sign_in.device_id)
    if learned and sign_in.country is not None and not known_country:
        add(RiskFactor.NEW_COUNTRY, f"first sign-in from {sign_in.country}")
    if learned and sign_in.device_id is not None and not known_device:
        add(RiskFactor.NEW_DEVICE, "a device the subject never signed in with")
    if learned and _unusual_hour(profile, now.hour, t):
        add(RiskFactor.UNUSUAL_HOUR, f"no earlier sign-in near {now.hour:02d}:00 UTC")
    score = min(100, sum(c.points for c in found))
    return RiskAssessment(
        score=score,
        level=level_of(score),
        contributions=tuple(found),
        familiar_location=known_network or known_country,
        familiar_device=known_device,
    )


# -- the decision ------------------------------------------------------------------------------


def access_context(
    assessment: RiskAssessment,
    *,
    tier: PolicyTier,
    role: str | None = None,
    sensitivity: Sensitivity = Sensitivity.LOW,
) -> AccessContext:
    """Conditional access's view of an assessed sign-in (:func:`verifiers.policy.decide_mfa`).

    Risk ``none`` only when nothing scored; the location is ``anonymous_network`` on a listed
    IP, ``new_country``, ``known`` (a country or network the subject used), else ``unknown``;
    the device counts as trusted when the subject completed a sign-in with it before. The
    admin tier's role defaults to ``admin``: webauthn required, no codes sent by phone or
    e-mail (decide_mfa's privileged role)."""
    has = assessment.has
    if has(RiskFactor.ANONYMOUS_IP) or has(RiskFactor.MALICIOUS_IP):
        location = Location.ANONYMOUS_NETWORK
    elif has(RiskFactor.NEW_COUNTRY):
        location = Location.NEW_COUNTRY
    elif assessment.familiar_location:
        location = Location.KNOWN
    else:
        location = Location.UNKNOWN
    return AccessContext(
        role=role if role is not None else ("admin" if tier is PolicyTier.ADMIN else ""),
        application_sensitivity=sensitivity,
        risk_level=RiskLevel.NONE if assessment.score == 0 else assessment.level,
        location=location,
        device_trusted=assessment.familiar_device,
        tier=tier,
    )


def decide(
    assessment: RiskAssessment,
    *,
    tier: PolicyTier,
    role: str | None = None,
    sensitivity: Sensitivity = Sensitivity.LOW,
    tiers: Mapping[PolicyTier, TierPolicy] = TIERS,
) -> tuple[AccessContext, MfaDecision]:
    """The tier's decision for an assessed sign-in."""
    context = access_context(assessment, tier=tier, role=role, sensitivity=sensitivity)
    return context, decide_mfa(context, tiers)

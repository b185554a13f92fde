"""The thresholds of every risk detection, and the operator's IP lists.

:class:`DetectionThresholds` is a value: the edge reads it from settings once (the IP lists
from the operator's files through :meth:`NetworkList.parse`) and passes it to every fold.
Each field says what it bounds; the defaults follow the issue and common SOC practice.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from functools import lru_cache

from schemas.fields import Channel, RiskLevel, check_country
from schemas.payloads import Detection

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_COUNT = 10_000
"""No counting threshold may exceed this: windows keep at most that many marks."""
MAX_WINDOW = timedelta(days=90)

FACTOR_RESET_RISKS = frozenset(Detection) - {
    Detection.PASSWORD_SPRAY,  # keyed by IP: its subject is only the trigger's
    Detection.SMS_PUMPING,  # keyed by tenant: likewise
    Detection.FACTOR_RESET_AFTER_RISK,
}


IP_CACHE_SIZE = 8192
"""Addresses parsed lately, kept parsed: the per-IP keys and folds of one event, and the
events of one client, parse the same text (addresses are immutable values)."""


def parse_ip(value: str) -> IpAddress:
    """``value`` as an address; an IPv4-mapped IPv6 address is its IPv4 address."""
    return _parse_ip(value)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""The IPv4 text ``ipaddress`` accepts (four decimal octets, no leading zeros): read here
without its octet-by-octet parse."""


@lru_cache(maxsize=IP_CACHE_SIZE)
def _parse_ip(value: str) -> IpAddress:
    text = value.strip()
    if _DOTTED_QUAD.fullmatch(text):
        a, b, c, d = map(int, text.split("."))
        return ipaddress.IPv4Address(a << 24 | b << 16 | c << 8 | d)
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class NetworkList:
    """An operator-supplied list of IPv4 and IPv6 networks (Tor exits, VPNs, blocklists).

    Lookup costs one set probe per distinct prefix length in the list, so a list of a
    hundred thousand entries is as cheap to consult as a list of ten.
    """

    networks: tuple[IpNetwork, ...] = ()
    name: str = "list"
    """Shown in the evidence of a match (``list``)."""
    _index: dict[tuple[int, int], frozenset[int]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple[int, int], set[int]] = {}
        for network in self.networks:
            key = (network.version, network.prefixlen)
            index.setdefault(key, set()).add(int(network.network_address))
        # longest prefixes first: the most specific entry is the one reported
        ordered = sorted(index.items(), key=lambda item: (item[0][0], -item[0][1]))
        object.__setattr__(self, "_index", {k: frozenset(v) for k, v in ordered})

    @classmethod
    def parse(cls, entries: Iterable[str], *, name: str = "list") -> NetworkList:
        """Networks from lines like ``192.0.2.1``, ``198.51.100.0/24``, ``2001:db8::/32``.

        Blank lines and ``#`` comments are skipped; host bits are tolerated (the network
        they belong to is taken); anything else raises ``ValueError`` naming the line.
        """
        networks: list[IpNetwork] = []
        for number, line in enumerate(entries, start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"{name} line {number}: expected an IP address or CIDR network, found {entry!r}"
                ) from None
        return cls(tuple(sorted(set(networks), key=_network_order)), name)

    def match(self, address: IpAddress) -> IpNetwork | None:
        """The most specific network of the list holding ``address``, if any."""
        value, bits = int(address), address.max_prefixlen
        for (version, prefix), starts in self._index.items():
            if version != address.version:
                continue
            start = (value >> (bits - prefix)) << (bits - prefix) if prefix else 0
            if start in starts:
                if version == 4:
                    return ipaddress.IPv4Network((start, prefix))
                return ipaddress.IPv6Network((start, prefix))
        return None

    def __len__(self) -> int:
        return len(self.networks)


def _network_order(network: IpNetwork) -> tuple[int, int, int]:
    return network.version, int(network.network_address), network.prefixlen


@dataclass(frozen=True)
class DetectionThresholds:
    """Every threshold of the risk detections (``streams/folds``); all times are event times.

    General rules: a window counts events with ``now - time <= window``; a detection that
    fired for a key (subject, IP or tenant) stays quiet for that key for ``cooldown`` while
    its condition persists (windows keep counting; the first trigger after the cool-down
    fires again). Detections that learn (new country, new device) fire once per new value.
    """

    cooldown: timedelta = timedelta(hours=1)
    """Quiet time after a detection fired for a key (see the class docstring)."""
    max_related_events: int = 20
    """At most this many ids (the newest) in ``related_event_ids``."""

    # -- impossible travel (successive successful sign-ins with coordinates) ------------
    travel_max_speed_kmh: float = 900.0
    """Faster than this between two successful sign-ins fires (a jet flies ~900 km/h)."""
    travel_min_distance_km: float = 100.0
    """Hops shorter than this are geolocation jitter and never fire."""
    travel_min_elapsed: timedelta = timedelta(minutes=1)
    """The speed is computed over at least this time (two sign-ins in one second)."""
    travel_imprecise_sources: frozenset[str] = frozenset({"centroid"})
    """``Geo.source`` values that locate only the country (enrichment's last resort)."""
    travel_imprecise_radius_km: float = 1000.0
    """Subtracted from the distance per imprecise point; two points in one country with an
    imprecise one among them are never compared."""

    # -- new country, new device (successful sign-ins) ----------------------------------
    learning_sign_ins: int = 10
    """Learning ends after this many successful sign-ins …"""
    learning_period: timedelta = timedelta(days=14)
    """… or this long after the first one, whichever comes first."""
    max_known_countries: int = 50
    """Countries remembered per subject (the least recently seen is forgotten)."""
    max_known_devices: int = 20
    """Devices (``client.device.id``) remembered per subject, likewise."""

    # -- anonymous or malicious IP ------------------------------------------------------
    anonymous_networks: NetworkList = NetworkList(name="anonymous")
    """Tor exits, anonymising VPNs, open proxies (operator-supplied)."""
    malicious_networks: NetworkList = NetworkList(name="malicious")
    """Known attack sources, threat-intelligence blocklists (operator-supplied)."""

    # -- push fatigue -------------------------------------------------------------------
    push_fatigue_count: int = 5
    """Rejected or expired pushes …"""
    push_fatigue_window: timedelta = timedelta(minutes=10)
    """… within this window fire; an approval within this window after a firing fires
    again, as critical (the person gave in)."""

    # -- password spray (keyed by IP) ---------------------------------------------------
    spray_min_subjects: int = 10
    """Distinct subjects (``tenant/subject``) with a failed first-factor login from one IP …"""
    spray_window: timedelta = timedelta(hours=1)
    """… within this window fire."""

    # -- OTP guessing -------------------------------------------------------------------
    otp_guess_count: int = 10
    """Wrong codes on any OTP factor for one subject …"""
    otp_guess_window: timedelta = timedelta(hours=1)
    """… within this window fire. Unlike the lockout counters, a success does not reset
    it, it spans factors, and it only reports."""
    otp_guess_reasons: frozenset[str] = frozenset({"invalid_code", "replayed"})
    """``mfa.verification.failed`` reasons that are guesses (``locked_out`` never is)."""

    # -- recovery-code abuse ------------------------------------------------------------
    recovery_failure_count: int = 3
    """Failed recovery codes (any reason but ``locked_out``) …"""
    recovery_failure_window: timedelta = timedelta(hours=1)
    """… within this window fire."""
    recovery_success_count: int = 3
    """Recovery codes used (they are for emergencies) …"""
    recovery_success_window: timedelta = timedelta(hours=24)
    """… within this window fire."""

    # -- SMS pumping (keyed by tenant) --------------------------------------------------
    sms_channels: frozenset[Channel] = frozenset({Channel.SMS})
    """``mfa.challenge.sent`` channels watched (add ``voice`` for voice toll fraud)."""
    sms_window: timedelta = timedelta(minutes=10)
    """The burst window of both SMS rules."""
    sms_unusual_count: int = 5
    """Sends to unusual or premium destination countries within the window that fire."""
    sms_burst_count: int = 100
    """Sends of any destination within the window that fire (counted per whole minute);
    tune to the largest tenant's peak."""
    sms_learning_sends: int = 50
    """A tenant's usual countries are learnt from its first sends: this many …"""
    sms_learning_period: timedelta = timedelta(days=14)
    """… or during this long after its first send, whichever comes first."""
    sms_adoption_period: timedelta = timedelta(days=7)
    """After learning, a country still receiving codes this long after its first send
    becomes usual (a tenant entering a new market stops alerting)."""
    sms_premium_countries: frozenset[str] = frozenset()
    """Destinations always unusual (operator-supplied premium-rate, IRSF-prone countries)."""

    # -- factor reset or removal after a risky sign-in ----------------------------------
    reset_window: timedelta = timedelta(hours=24)
    """``mfa.enrollment.removed`` or ``mfa.recovery.regenerated`` this soon after …"""
    reset_min_severity: RiskLevel = RiskLevel.MEDIUM
    """… a ``risk.detected`` of at least this severity …"""
    reset_risk_detections: frozenset[Detection] = FACTOR_RESET_RISKS
    """… of one of these detections, for the same subject, fires."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(item.default, timedelta):
                good = isinstance(value, timedelta) and timedelta(0) < value <= MAX_WINDOW
                _require(item.name, good, f"a timedelta in (0, {MAX_WINDOW.days} days]", value)
            elif isinstance(item.default, bool):
                pass
            elif isinstance(item.default, int):
                good = type(value) is int and 1 <= value <= MAX_COUNT
                _require(item.name, good, f"an integer in 1..{MAX_COUNT}", value)
            elif isinstance(item.default, float):
                good = isinstance(value, int | float) and not isinstance(value, bool)
                good = good and math.isfinite(value) and value >= 0
                _require(item.name, good, "a finite number >= 0", value)
                object.__setattr__(self, item.name, float(value))
            elif isinstance(item.default, NetworkList):
                _require(item.name, isinstance(value, NetworkList), "a NetworkList", value)
        speed = self.travel_max_speed_kmh
        _require("travel_max_speed_kmh", speed > 0, "a speed > 0", speed)
        for name in BURST_WINDOWS:
            value = getattr(self, name)
            _require(name, value <= timedelta(days=1), "a burst window of at most 1 day", value)
        object.__setattr__(self, "reset_min_severity", RiskLevel(self.reset_min_severity))
        object.__setattr__(self, "sms_channels", frozenset(map(Channel, self.sms_channels)))
        detections = frozenset(map(Detection, self.reset_risk_detections))
        object.__setattr__(self, "reset_risk_detections", detections)
        object.__setattr__(self, "otp_guess_reasons", frozenset(self.otp_guess_reasons))
        object.__setattr__(
            self, "travel_imprecise_sources", frozenset(self.travel_imprecise_sources)
        )
        premium = frozenset(self.sms_premium_countries)
        for country in premium:
            check_country("sms_premium_countries", country)
        object.__setattr__(self, "sms_premium_countries", premium)


BURST_WINDOWS = (
    "push_fatigue_window",
    "spray_window",
    "otp_guess_window",
    "recovery_failure_window",
    "sms_window",
)
"""Windows of burst rules, at most a day (SMS minute buckets stay few)."""


def _require(name: str, ok: bool, expected: str, found: object) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, found {found!r}")

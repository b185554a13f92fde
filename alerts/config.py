"""The plain values the alerts take: destinations, routes, grouping, retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alerts.errors import AlertsError

Kind = Literal["webhook", "slack", "syslog"]
Format = Literal["alert", "ocsf"]
Transport = Literal["udp", "tcp"]
Severity = Literal["none", "low", "medium", "high", "critical"]

SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high", "critical")
ALERT_TYPES: tuple[str, ...] = ("risk.detected", "lockout.applied", "ip.block.applied")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)  # type: ignore[arg-type,unused-ignore]


@dataclass(frozen=True)
class Destination:
    """Where alerts go.

    * ``webhook``: an HTTP(S) ``POST`` of JSON (``format`` ``alert``: our alert document;
      ``ocsf``: an OCSF 1.1 event), signed with HMAC-SHA256 under ``secret`` when one is set.
    * ``slack``: a Slack-compatible incoming webhook (``text`` and ``blocks``).
    * ``syslog``: RFC 5424 to ``host``:``port`` over ``transport`` (UDP one message a
      datagram, TCP octet-counted, RFC 6587); ``format`` ``ocsf`` puts the OCSF JSON in MSG.
    """

    name: str
    kind: Kind
    url: str | None = None
    secret: bytes | None = None
    format: Format = "alert"
    host: str | None = None
    port: int = 514
    transport: Transport = "udp"
    facility: int = 10
    """Syslog facility (10: authpriv; 13: log audit)."""
    hostname: str = "-"
    """Syslog HOSTNAME of the messages (``-``: none)."""
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise AlertsError(f"destination name {self.name!r}: letters, digits, - _ . only")
        if self.kind in ("webhook", "slack") and not self.url:
            raise AlertsError(f"destination {self.name}: a {self.kind} needs a url")
        if self.kind == "syslog" and not self.host:
            raise AlertsError(f"destination {self.name}: syslog needs a host")
        if not 0 <= self.facility <= 23:
            raise AlertsError(f"destination {self.name}: facility {self.facility} not in 0-23")


@dataclass(frozen=True)
class Route:
    """Alerts of ``tenants`` (``None``: every tenant), ``types`` (``None``: the three) and
    ``detections`` (``risk.detected`` only; ``None``: every one) at ``min_severity`` or
    above go to ``destinations``."""

    destinations: tuple[str, ...]
    tenants: frozenset[str] | None = None
    types: frozenset[str] | None = None
    detections: frozenset[str] | None = None
    min_severity: Severity = "low"

    def __post_init__(self) -> None:
        if self.min_severity not in SEVERITIES:
            raise AlertsError(f"route: severity {self.min_severity!r} not in {SEVERITIES}")
        unknown = (self.types or frozenset()) - set(ALERT_TYPES)
        if unknown:
            raise AlertsError(f"route: types {sorted(unknown)} are not alerted ({ALERT_TYPES})")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff (``initial_s`` doubling up to ``max_s``, with jitter) for at
    most ``give_up_after_s``; then the alert goes to the dead-letter topic."""

    initial_s: float = 1.0
    max_s: float = 60.0
    give_up_after_s: float = 3600.0

    def delay(self, attempt: int, jitter: float = 1.0) -> float:
        """The wait after failed attempt ``attempt`` (1-based); ``jitter`` in [0.5, 1]."""
        return float(min(self.max_s, self.initial_s * 2.0 ** (attempt - 1)) * jitter)


@dataclass(frozen=True)
class GroupingPolicy:
    """One alert per attack: alerts of one group (tenant, type, detection or scope, key)
    within ``window_s`` of the first are counted, not sent; a summary with the count
    goes at the window's end. At most ``max_groups`` are open (the oldest is closed
    early beyond). ``lockouts_by`` ``tenant``: every subject lockout of a tenant is one
    group (a spray locking many subjects); ``subject``: one group per subject."""

    window_s: float = 300.0
    max_groups: int = 10_000
    lockouts_by: Literal["tenant", "subject"] = "tenant"
    samples: int = 5
    """Keys (subjects, IPs) and event ids a summary names, at most."""


@dataclass(frozen=True)
class AlertsConfig:
    destinations: tuple[Destination, ...]
    routes: tuple[Route, ...] = ()
    """None: every destination takes every alert of ``default_min_severity`` or above."""
    default_min_severity: Severity = "medium"
    grouping: GroupingPolicy = field(default_factory=GroupingPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    topics: tuple[str, ...] = ("mfa.lockouts", "mfa.anomalies")
    dead_letter_topic: str = "mfa.alerts.dlq"
    group_prefix: str = "factorstream-alerts"
    """Each destination reads in consumer group ``<group_prefix>-<destination>``."""

    def __post_init__(self) -> None:
        names = [d.name for d in self.destinations]
        if len(set(names)) != len(names):
            raise AlertsError(f"destination names repeat: {names}")
        for route in self.routes:
            unknown = set(route.destinations) - set(names)
            if unknown:
                raise AlertsError(f"route names unknown destinations {sorted(unknown)}")

    def destination(self, name: str) -> Destination:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        raise AlertsError(
            f"no destination {name!r} (configured: {[d.name for d in self.destinations]})"
        )

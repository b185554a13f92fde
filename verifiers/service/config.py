"""The plain values the MFA service takes (the front door builds them from settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from verifiers.kafka_connection import KafkaConnection
from verifiers.risk import RiskThresholds


@dataclass(frozen=True)
class ServiceConfig:
    """Where the service keeps its state and how it signs what it asserts."""

    database_url: str
    """The verifier database (enrollments, lockout gate, outbox, service clients)."""
    secrets_key_file: Path
    """The key that encrypts factor secrets at rest (created on first use, mode 0600)."""
    signing_key_file: Path
    """Ed25519 key (PEM) that signs MFA assertions (created on first use, mode 0600);
    retired public keys sit beside it and stay in the JWKS."""
    issuer: str
    """``iss`` of every assertion: the URL relying parties know the service by."""
    source: str = "urn:factorstream:service"
    """CloudEvents ``source`` of the events the service's ceremonies emit."""
    assertion_lifetime: timedelta = timedelta(minutes=5)
    max_body_bytes: int = 16 * 1024
    totp_issuer: str = "factorstream"
    """The issuer an authenticator app shows beside a TOTP enrollment."""
    stream: StreamViewConfig | None = None
    """Where to read the stream's state (:mod:`verifiers.service.stream_view`); ``None``:
    no stream view (assessments score the request alone, only the verifier's gate locks)."""
    risk: RiskThresholds = field(default_factory=RiskThresholds)
    rate_limits: RateLimits = field(default_factory=lambda: RateLimits())


@dataclass(frozen=True)
class StreamViewConfig:
    """The topics the service tails for the stream's state."""

    kafka: KafkaConnection
    events_topic: str = "mfa.events"
    """``mfa.events``, or the worker's ``<app_id>-events-ingested`` (geo-enriched)."""
    lockouts_topic: str = "mfa.lockouts"
    anomalies_topic: str = "mfa.anomalies"
    poll_ms: int = 100
    """The consumer's long-poll wait (the broker answers at once when records arrive)."""

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.events_topic, self.lockouts_topic, self.anomalies_topic)


@dataclass(frozen=True)
class RateLimits:
    """Token buckets per caller IP and per client credential (``0``: no limit).

    The caller IP is the TCP peer; ``X-Forwarded-For`` is read only when the peer is in
    ``trusted_proxies`` (then the right-most address not itself a trusted proxy counts)."""

    per_ip_per_s: float = 100.0
    per_ip_burst: int = 200
    per_client_per_s: float = 500.0
    per_client_burst: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    max_keys: int = 100_000
    """Buckets kept at most per kind; the longest idle go first."""

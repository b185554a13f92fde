"""The plain values the MFA service takes (the front door builds them from settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

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
    webauthn_rp_id: str | None = None
    """The WebAuthn relying party id: the login site's domain (default: the issuer's host)."""
    webauthn_rp_name: str = "factorstream"
    webauthn_origins: tuple[str, ...] = ()
    """Origins the browser may report (default: the issuer's origin)."""
    smtp_host: str | None = None
    """E-mail codes go through this SMTP relay (none: the e-mail factor is unavailable)."""
    smtp_port: int = 25
    smtp_sender: str = "no-reply@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    sms_gateway_url: str | None = None
    """SMS and voice codes go to this JSON gateway (:class:`verifiers.delivery.HttpSmsProvider`;
    none: SMS and voice are unavailable)."""
    sms_gateway_token: str | None = field(default=None, repr=False)
    sms_costs_file: Path | None = None
    """The SMS and voice price table and daily caps per country (TOML or JSON,
    ``docs/sms-cost.md``); none: sends are neither priced nor capped."""

    stream: StreamViewConfig | None = None
    """Where to read the stream's state (:mod:`verifiers.service.stream_view`); ``None``:
    no stream view (assessments score the request alone, only the verifier's gate locks)."""
    risk: RiskThresholds = field(default_factory=RiskThresholds)
    rate_limits: RateLimits = field(default_factory=lambda: RateLimits())

    @property
    def rp_id(self) -> str:
        return self.webauthn_rp_id or urlsplit(self.issuer).hostname or "localhost"

    @property
    def origins(self) -> tuple[str, ...]:
        if self.webauthn_origins:
            return self.webauthn_origins
        parts = urlsplit(self.issuer)
        return (f"{parts.scheme}://{parts.netloc}",)


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

"""The plain values the MFA service takes (the front door builds them from settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit


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

    @property
    def rp_id(self) -> str:
        return self.webauthn_rp_id or urlsplit(self.issuer).hostname or "localhost"

    @property
    def origins(self) -> tuple[str, ...]:
        if self.webauthn_origins:
            return self.webauthn_origins
        parts = urlsplit(self.issuer)
        return (f"{parts.scheme}://{parts.netloc}",)

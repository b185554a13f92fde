"""The MFA service's plain values (:class:`verifiers.service.config.ServiceConfig`) from
settings. Its verifier database is the outbox database, so the relay publishes the
events its ceremonies emit."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from factorstream.settings import Settings
from verifiers.service.config import ServiceConfig


def service_config(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> ServiceConfig:
    service = settings.service
    host, port = host or service.host, port or service.port
    return ServiceConfig(
        database_url=settings.outbox_database_url(),
        secrets_key_file=settings.key_file(service.secrets_key_file, "verifier-secrets.key"),
        signing_key_file=settings.key_file(service.signing_key_file, "service-signing.pem"),
        issuer=service.issuer or f"http://{host}:{port}",
        source=service.source,
        assertion_lifetime=timedelta(seconds=service.assertion_lifetime_s),
        max_body_bytes=service.max_body_bytes,
        webauthn_rp_id=service.webauthn_rp_id,
        webauthn_rp_name=service.webauthn_rp_name,
        webauthn_origins=tuple(service.webauthn_origins),
        smtp_host=service.smtp_host,
        smtp_port=service.smtp_port,
        smtp_sender=service.smtp_sender,
        smtp_starttls=service.smtp_starttls,
        smtp_username=service.smtp_username,
        smtp_password=_secret(service.smtp_password),
        sms_gateway_url=service.sms_gateway_url,
        sms_gateway_token=_secret(service.sms_gateway_token),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None

"""The MFA service's plain values (:class:`verifiers.service.config.ServiceConfig`) from
settings. Its verifier database is the outbox database, so the relay publishes the
events its ceremonies emit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from factorstream.settings import Settings
from verifiers.risk import RiskThresholds
from verifiers.service.config import RateLimits, ServiceConfig, StreamViewConfig


def service_config(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    stream_view: bool | None = None,
) -> ServiceConfig:
    """``stream_view``: tail the stream's state from Kafka (default: the settings)."""
    service = settings.service
    host, port = host or service.host, port or service.port
    tailing = service.stream_view if stream_view is None else stream_view
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
        sms_costs_file=service.sms_costs_file,
        stream=StreamViewConfig(
            kafka=settings.kafka(),
            events_topic=service.stream_events_topic or settings.topics.events,
            lockouts_topic=settings.topics.lockouts,
            anomalies_topic=settings.topics.anomalies,
        )
        if tailing
        else None,
        risk=risk_thresholds(settings),
        rate_limits=RateLimits(
            per_ip_per_s=service.rate_per_ip_per_s,
            per_ip_burst=service.rate_per_ip_burst,
            per_client_per_s=service.rate_per_client_per_s,
            per_client_burst=service.rate_per_client_burst,
            trusted_proxies=tuple(service.trusted_proxies),
        ),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def risk_thresholds(settings: Settings) -> RiskThresholds:
    """The assessment's thresholds, from the detections' settings where they mean the same
    (impossible travel, the IP lists)."""
    detections = settings.detections
    return RiskThresholds(
        travel_max_speed_kmh=detections.travel_max_speed_kmh,
        travel_min_distance_km=detections.travel_min_distance_km,
        anonymous_networks=_networks(detections.anonymous_networks_file, "anonymous"),
        malicious_networks=_networks(detections.malicious_networks_file, "malicious"),
    )


def _networks(path: Path | None, kind: str) -> tuple[str, ...]:
    if path is None:
        return ()
    from streams.topology import read_network_list  # the worker's reader of the same files

    found = read_network_list(path, setting=f"detections.{kind}_networks_file")
    return tuple(str(network) for network in found.networks)

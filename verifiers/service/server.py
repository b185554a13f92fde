"""Running the service: open its parts from a :class:`ServiceConfig`, serve with uvicorn.

SIGINT, SIGTERM and SIGHUP stop the server the same way: it stops accepting, finishes the
requests in flight and returns (no signal is re-raised afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from verifiers.service import require_extra

require_extra("uvicorn", "fastapi", "jwt")


from schemas import Event
from verifiers import trusted_devices
from verifiers.crypto import SecretBox, new_key
from verifiers.delivery import (
    DeliveryProvider,
    FailoverDelivery,
    HttpSmsProvider,
    SmtpEmailProvider,
)
from verifiers.sendcaps import load_send_charges
from verifiers.service.api import ServiceParts, create_app
from verifiers.service.assertions import AssertionKeys
from verifiers.service.clients import ServiceClients
from verifiers.service.config import ServiceConfig
from verifiers.service.keyfiles import read_or_create
from verifiers.service.metrics import ServiceMetrics
from verifiers.service.serving import run_app
from verifiers.service.stream_view import StreamView
from verifiers.store import VerifierStore, store_engine


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_store(config: ServiceConfig) -> VerifierStore:
    """The verifier store the service works on, its schema migrated."""
    secrets_key = read_or_create(config.secrets_key_file, lambda: new_key().encode())
    store = VerifierStore(
        store_engine(config.database_url), SecretBox(secrets_key.decode()), source=config.source
    )
    store.migrate()
    return store


def open_delivery(config: ServiceConfig) -> FailoverDelivery | None:
    """The code delivery the configuration names (``None``: no provider configured)."""
    providers: list[DeliveryProvider] = []
    if config.smtp_host is not None:
        providers.append(
            SmtpEmailProvider(
                config.smtp_host,
                config.smtp_port,
                config.smtp_sender,
                starttls=config.smtp_starttls,
                username=config.smtp_username,
                password=config.smtp_password,
            )
        )
    if config.sms_gateway_url is not None:
        providers.append(
            HttpSmsProvider("sms-gateway", config.sms_gateway_url, token=config.sms_gateway_token)
        )
    return FailoverDelivery(providers) if providers else None


def forget_devices(store: VerifierStore) -> Callable[[Event], None]:
    """The stream view's ``on_erased``: an erasure ends the subject's trusted devices made
    until then (:func:`verifiers.trusted_devices.forget`; a replayed erasure finds none)."""

    def erased(event: Event) -> None:
        requested_by = getattr(event.data, "requested_by", None) or "erasure"
        trusted_devices.forget(
            store,
            tenant=event.tenant,
            subject=event.subject,
            now=event.time,
            requested_by=requested_by,
        )

    return erased


def open_parts(
    config: ServiceConfig,
    *,
    clock: Callable[[], datetime] = utc_now,
    registry: Any = None,
) -> ServiceParts:
    """The service's parts; with ``config.stream``, a stream view tailing Kafka (started
    here, stopped with :func:`close_parts`) whose locks the verifier's gate honours;
    with ``registry`` (a ``prometheus_client.CollectorRegistry``), its metrics."""
    store = open_store(config)
    metrics = None
    if registry is not None:
        metrics = ServiceMetrics(registry)
        store.on_committed = metrics.committed
    view = None
    if config.stream is not None:
        view = StreamView(config.risk)
        store.stream_lockouts = view.stream_lockouts(clock)
        view.on_erased = forget_devices(store)
        view.start(config.stream)
    return ServiceParts(
        config=config,
        store=store,
        clients=ServiceClients(store.engine),
        keys=AssertionKeys(config.signing_key_file),
        clock=clock,
        delivery=open_delivery(config),
        charges=load_send_charges(config.sms_costs_file) if config.sms_costs_file else None,
        stream=view,
        metrics=metrics,
    )


def close_parts(parts: ServiceParts) -> None:
    if parts.stream is not None:
        parts.stream.stop()
    parts.store.engine.dispose()


def serve(
    config: ServiceConfig,
    *,
    host: str,
    port: int,
    on_ready: Callable[[], Any] | None = None,
    clock: Callable[[], datetime] = utc_now,
    log_level: str = "info",
    registry: Any = None,
) -> None:
    """Serve until stopped by a signal; ``on_ready`` is called once the port is bound;
    ``clock``: the service's time (a benchmark fixes it); ``registry``: where the metrics
    go (``None``: no ``/metrics``)."""
    parts = open_parts(config, clock=clock, registry=registry)
    try:
        run_app(create_app(parts), host=host, port=port, log_level=log_level, on_ready=on_ready)
    finally:
        close_parts(parts)

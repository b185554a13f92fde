"""Running the HTTP ingest: uvicorn over :func:`sources.http_ingest.create_app`.

SIGINT, SIGTERM and SIGHUP stop it the same way: it stops accepting, finishes the
requests in flight (each waits for its acknowledgement or its 503), stops the producer
and returns (no signal is re-raised afterwards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from verifiers.service import require_extra

require_extra("uvicorn", "fastapi")

from fastapi import APIRouter

from sources.credentials import ingest_credentials
from sources.delivery import DEFAULT_TIMEOUT_S, EventDelivery
from sources.http_ingest import IngestConfig, create_app
from sources.ingest_metrics import IngestMetrics, bootstrap_servers, ingest_checks
from verifiers.service.serving import run_app


@dataclass(frozen=True)
class IngestServerConfig:
    """Everything the ingest process needs, as plain values."""

    app: IngestConfig
    database_url: str
    kafka: Mapping[str, Any] = field(repr=False)
    """aiokafka keyword arguments (:func:`verifiers.kafka_connection.aiokafka_config`)."""
    topic: str
    delivery_timeout_s: float = DEFAULT_TIMEOUT_S
    linger_ms: int = 5


def serve(
    config: IngestServerConfig,
    *,
    host: str,
    port: int,
    clock: Callable[[], datetime],
    routers: Sequence[Callable[[EventDelivery], APIRouter]] = (),
    on_ready: Callable[[], Any] | None = None,
    log_level: str = "info",
    registry: Any = None,
) -> None:
    """Serve until stopped by a signal; ``on_ready`` is called once the port is bound.

    ``routers``: makers of further routers mounted in the same server (the identity
    providers' webhook receivers), each given the server's one :class:`EventDelivery`.
    ``registry``: where the metrics go (a ``prometheus_client.CollectorRegistry``;
    ``None``: no ``/metrics``)."""
    credentials = ingest_credentials(config.database_url)
    delivery = EventDelivery(
        config.kafka,
        topic=config.topic,
        timeout_s=config.delivery_timeout_s,
        linger_ms=config.linger_ms,
    )
    app = create_app(
        config.app,
        delivery,
        credentials,
        clock=clock,
        routers=[make(delivery) for make in routers],
        ready=ingest_checks(credentials.engine, bootstrap_servers(config.kafka)),
        metrics=None if registry is None else IngestMetrics(registry),
    )
    try:
        run_app(app, host=host, port=port, lifespan="on", log_level=log_level, on_ready=on_ready)
    finally:
        credentials.engine.dispose()

"""Running the HTTP ingest: uvicorn over :func:`sources.http_ingest.create_app`.

SIGINT, SIGTERM and SIGHUP stop it the same way: it stops accepting, finishes the
requests in flight (each waits for its acknowledgement or its 503), stops the producer
and returns (no signal is re-raised afterwards).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from verifiers.service import require_extra

require_extra("uvicorn", "fastapi")

import uvicorn
from fastapi import APIRouter

from sources.credentials import ingest_credentials
from sources.delivery import DEFAULT_TIMEOUT_S, EventDelivery
from sources.http_ingest import IngestConfig, create_app

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by SIGHUP too, and without re-raising the signal."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {stop: signal.signal(stop, self.handle_exit) for stop in STOP_SIGNALS}
        try:
            yield
        finally:
            for stop, handler in previous.items():
                signal.signal(stop, handler)


def serve(
    config: IngestServerConfig,
    *,
    host: str,
    port: int,
    clock: Callable[[], datetime],
    routers: Sequence[Callable[[EventDelivery], APIRouter]] = (),
    on_ready: Callable[[], Any] | None = None,
    log_level: str = "info",
) -> None:
    """Serve until stopped by a signal; ``on_ready`` is called once the port is bound.

    ``routers``: makers of further routers mounted in the same server (the identity
    providers' webhook receivers), each given the server's one :class:`EventDelivery`."""
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
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_level=log_level,
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )
    )
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            if server.started:
                on_ready()

        server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    finally:
        credentials.engine.dispose()

"""The HTTP ingest's plain values (:class:`sources.ingest_server.IngestServerConfig`) from
settings: its producer speaks to the cluster of ``kafka_bootstrap`` with
``kafka_security``, to ``topics.events``; control events are accepted when signed by the
keys the worker trusts, and events dated ahead by the worker's own margin are refused."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from factorstream.control_keys import trusted_control_keys
from factorstream.settings import Settings
from verifiers.kafka_connection import aiokafka_config

if TYPE_CHECKING:
    from sources.ingest_server import IngestServerConfig


def ingest_server_config(settings: Settings) -> IngestServerConfig:
    from sources.http_ingest import IngestConfig
    from sources.ingest_server import IngestServerConfig

    ingest = settings.ingest
    secret = ingest.signing_secret.get_secret_value().encode() if ingest.signing_secret else None
    return IngestServerConfig(
        app=IngestConfig(
            max_body_bytes=ingest.max_body_bytes,
            max_batch_events=ingest.max_batch_events,
            retry_after_s=ingest.retry_after_s,
            signing_secret=secret,
            signature_window=timedelta(seconds=ingest.signature_window_s),
            max_ahead=timedelta(seconds=settings.stream.max_ahead_s),
            control_keys=trusted_control_keys(settings),
        ),
        database_url=settings.ingest_database_url(),
        kafka=aiokafka_config(settings.kafka()),
        topic=ingest.events_topic or settings.topics.events,
        delivery_timeout_s=ingest.delivery_timeout_s,
        linger_ms=ingest.linger_ms,
    )

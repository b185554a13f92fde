"""The HTTP ingest's Prometheus metrics and readiness (``docs/metrics.md``).

* ``factorstream_ingest_events_total{outcome}``: events accepted (the broker has them) and
  refused (each bad event of a refused request; the good ones of it are not delivered and
  not counted);
* ``factorstream_ingest_refusals_total{error}``: refused requests by the problem's
  ``error`` (``unauthenticated``, ``events_refused``, ``broker_unavailable``, …);
* ``factorstream_ingest_delivery_duration_seconds``: from handing a request's events to
  the producer to the broker's acknowledgement of all of them;
* ``factorstream_ingest_http_requests_total`` and ``…_http_request_duration_seconds``
  (``verifiers.service.metrics.HttpMetrics``).

``/ready``: the credentials' database answers and a bootstrap server accepts a connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from verifiers.kafka_connection import broker_reachable
from verifiers.service.metrics import (
    LATENCY_BUCKETS,
    HttpMetrics,
    ReadyChecks,
    database_answers,
)


class IngestMetrics(HttpMetrics):
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram  # the optional extra ``metrics``

        super().__init__(registry, "ingest")
        self.events = Counter(
            "factorstream_ingest_events",
            "Events accepted (acknowledged by the broker) or refused, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.refusals = Counter(
            "factorstream_ingest_refusals",
            "Requests refused, by the problem's error code.",
            ["error"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "factorstream_ingest_delivery_duration_seconds",
            "Time from handing a request's events to the producer to the broker's acks.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def bootstrap_servers(kafka: Mapping[str, Any]) -> list[str]:
    """The ``host:port`` list of aiokafka's ``bootstrap_servers`` (a string or a list)."""
    servers = kafka.get("bootstrap_servers", [])
    if isinstance(servers, str):
        return [s.strip() for s in servers.split(",") if s.strip()]
    return [str(s) for s in servers]


def ingest_checks(database: sa.Engine, servers: Sequence[str]) -> ReadyChecks:
    async def checks() -> dict[str, bool]:
        return {
            "database": await run_in_threadpool(database_answers, database),
            "broker": await broker_reachable(servers),
        }

    return checks

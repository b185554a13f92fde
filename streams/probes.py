"""The worker's probes on its web server: ``/health``, ``/ready`` and ``/metrics``.

* ``GET /health``: 200 ``{"status": "up"}`` while the process serves at all (liveness).
* ``GET /ready``: 200 when the worker can do its work — a broker answers (a TCP connection
  to a bootstrap server), partitions are assigned and no rebalance is under way, and no
  batch failed (the engine stopped committing) — else 503; both with
  ``{"ready": bool, "checks": {name: bool}}``.
* ``GET /metrics``: the Prometheus text format (``streams/metrics.py``), when the process
  was given a registry.

None needs the lockout API's token: they say nothing about a subject. They are served on
``stream.web_bind`` like the API (``docs/metrics.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import faust
from faust.types import AppT
from faust.web import Request, Response, View

from streams.engine import Engine
from verifiers.kafka_connection import KafkaConnection, broker_reachable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from streams.consumer import InOrderConsumer

HEALTH_PATH, READY_PATH, METRICS_PATH = "/health", "/ready", "/metrics"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


async def readiness(app: AppT, engine: Engine, kafka: KafkaConnection) -> dict[str, bool]:
    """Each readiness check by name (all true: ready)."""
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:  # no consumer yet (starting): not ready
        assigned = False
    return {
        "broker": await broker_reachable(kafka.servers),
        "partitions_assigned": assigned and not app.rebalancing,
        "engine": engine.failed is None,
    }


def register_probes(
    app: faust.App,
    engine: Engine,
    kafka: KafkaConnection,
    *,
    registry: CollectorRegistry | None = None,
) -> None:
    """Mount ``/health``, ``/ready`` and (with ``registry``) ``/metrics``."""

    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "up"})

    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            checks = await readiness(self.app, engine, kafka)
            ready = all(checks.values())
            return self.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    app.page(HEALTH_PATH, name="health")(HealthView)
    app.page(READY_PATH, name="ready")(ReadyView)
    if registry is None:
        return
    from prometheus_client.exposition import generate_latest

    exported = registry

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body: bytes = generate_latest(exported)
            # the text format 0.0.4 (aiohttp refuses a charset in the content type; the
            # format is UTF-8 by definition)
            return self.bytes(body, content_type=METRICS_CONTENT_TYPE)

    app.page(METRICS_PATH, name="metrics")(MetricsView)


def partition_offsets(app: faust.App) -> Iterator[tuple[str, int, int, int]]:
    """(topic, partition, log end offset, committed offset) of each assigned partition
    whose both offsets the consumer knows (``streams.metrics.PartitionOffsets``)."""
    try:
        consumer = cast("InOrderConsumer", app.consumer)
        assigned = consumer.assignment()
    except Exception:  # not started: nothing to say
        return
    for tp in sorted(assigned):
        try:
            log_end = consumer.highwater(tp)
        except Exception:  # not fetched yet
            log_end = None
        committed = consumer.committed_or_sought(tp)
        if log_end is not None and committed is not None:
            yield tp.topic, tp.partition, int(log_end), int(committed)


def held_commits(app: faust.App) -> Iterator[tuple[str, int, int]]:
    """(topic, partition, commits held in a row) of each partition whose commit is held."""
    try:
        consumer = cast("InOrderConsumer", app.consumer)
    except Exception:  # not started
        return
    for tp, (_, times) in sorted(consumer.held_commits().items()):
        yield tp.topic, tp.partition, times

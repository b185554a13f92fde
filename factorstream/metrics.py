"""The front door's part of the metrics: one Prometheus registry per process.

Each part registers its own metrics on the registry it is given (``streams/metrics.py``,
``verifiers/service/metrics.py``, ``sources/ingest_metrics.py``, ``alerts/metrics.py``)
and serves it at ``/metrics`` beside ``/health`` and ``/ready`` (``docs/metrics.md``).
``prometheus_client`` is the optional extra ``metrics``: without it a process serves its
probes and no metrics.
"""

from __future__ import annotations

import asyncio
import http.server
import importlib.util
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_registry() -> CollectorRegistry | None:
    """A fresh registry with the process collectors (CPU, memory, file descriptors) and
    Python's (GC, version); ``None`` when the extra ``metrics`` is not installed."""
    if importlib.util.find_spec("prometheus_client") is None:
        log.warning("prometheus_client is not installed (extra `metrics`): no /metrics")
        return None
    from prometheus_client import CollectorRegistry, disable_created_metrics
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    disable_created_metrics()  # type: ignore[no-untyped-call] # no `_created` series beside each counter and histogram
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


ReadyChecks = Callable[[], dict[str, bool]]
"""Each readiness check by name, all true: ready (called in the server's thread)."""


class ProbeServer:
    """``/health``, ``/ready`` and ``/metrics`` on a port of their own, in a daemon thread:
    for the processes without a web server (``factorstream relay``, ``alerts run``)."""

    def __init__(
        self, host: str, port: int, *, ready: ReadyChecks, registry: CollectorRegistry | None
    ) -> None:
        handler = _probe_handler(ready, registry)
        self.server = http.server.ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="probes", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> ProbeServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _probe_handler(
    ready: ReadyChecks, registry: CollectorRegistry | None
) -> type[http.server.BaseHTTPRequestHandler]:
    class Probes(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            path = self.path.partition("?")[0]
            if path == "/health":
                self._answer(200, "application/json", json.dumps({"status": "up"}).encode())
            elif path == "/ready":
                try:
                    checks = ready()
                except Exception:  # a check that fails to run: not ready
                    log.exception("readiness check failed")
                    checks = {"checks_ran": False}
                ok = all(checks.values())
                body = json.dumps({"ready": ok, "checks": checks}).encode()
                self._answer(200 if ok else 503, "application/json", body)
            elif path == "/metrics" and registry is not None:
                from prometheus_client.exposition import generate_latest

                self._answer(200, METRICS_CONTENT_TYPE, generate_latest(registry))
            else:
                self._answer(404, "application/json", b'{"error": "not_found"}')

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Scrapes every few seconds would flood the log: not logged."""

    return Probes


def broker_answers(servers: list[str]) -> bool:
    """:func:`verifiers.kafka_connection.broker_reachable`, from a thread without a loop."""
    from verifiers.kafka_connection import broker_reachable

    return asyncio.run(broker_reachable(servers))


def database_answers(url: str) -> Callable[[], bool]:
    """Whether ``SELECT 1`` succeeds on the database at ``url`` (one engine, reused)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, pool_pre_ping=True)

    def answers() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    return answers

"""The MFA service's Prometheus metrics and probes (``docs/metrics.md``).

* ``factorstream_service_verifications_total{factor, outcome, reason}``: each committed
  ``mfa.verification.succeeded`` / ``mfa.verification.failed`` (``reason``: the schema's
  reason, a closed set; ``none`` for a success);
* ``factorstream_service_events_total{type}``: every event a ceremony committed to the
  outbox (enrollments, challenges, lockouts, …);
* ``factorstream_service_http_requests_total{route, method, status}`` and
  ``factorstream_service_http_request_duration_seconds{route, method}``: by the route's
  template (``/v1/subjects/{subject}/totp/verify``), never the path a caller sent.

``GET /health`` (up) and ``GET /ready`` (the database answers ``SELECT 1``; with a stream
view, a broker answers and the view caught up) need no credential. Labels never carry a
subject, a tenant or an address.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from verifiers.service import require_extra

require_extra("fastapi")

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from schemas import Event
from schemas.payloads import VerificationFailed, VerificationSucceeded
from verifiers.kafka_connection import broker_reachable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404 on an unknown path)."""


class HttpMetrics:
    """Requests answered and their latency, by route template (``part``: ``service``,
    ``ingest``: the metrics' names are ``factorstream_<part>_http_…``)."""

    def __init__(self, registry: Any, part: str) -> None:
        from prometheus_client import Counter, Histogram  # the optional extra ``metrics``

        self.registry = registry
        self.requests = Counter(
            f"factorstream_{part}_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"factorstream_{part}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def exposition(self) -> bytes:
        from prometheus_client.exposition import generate_latest

        body: bytes = generate_latest(self.registry)
        return body


class ServiceMetrics(HttpMetrics):
    """The service's metrics on ``registry`` (a ``prometheus_client.CollectorRegistry``)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter

        super().__init__(registry, "service")
        self.verifications = Counter(
            "factorstream_service_verifications",
            "Verification outcomes committed, by factor, outcome and refusal reason.",
            ["factor", "outcome", "reason"],
            registry=registry,
        )
        self.events = Counter(
            "factorstream_service_events",
            "Events the ceremonies committed to the outbox, by type.",
            ["type"],
            registry=registry,
        )

    def committed(self, events: Sequence[Event]) -> None:
        """A ceremony step committed ``events`` (``VerifierStore.on_committed``)."""
        for event in events:
            self.events.labels(event.type).inc()
            data = event.data
            if isinstance(data, VerificationSucceeded):
                self.verifications.labels(str(data.factor), "succeeded", "none").inc()
            elif isinstance(data, VerificationFailed):
                self.verifications.labels(str(data.factor), "failed", str(data.reason)).inc()


ReadyChecks = Callable[[], Awaitable[dict[str, bool]]]
"""Each readiness check by name (all true: ready)."""


def service_checks(
    database: sa.Engine, *, kafka: Any = None, caught_up: Callable[[], bool] | None = None
) -> ReadyChecks:
    """The service's readiness: the database answers; with a stream view (``kafka``, its
    ``KafkaConnection``), a broker answers and the view caught up."""

    async def checks() -> dict[str, bool]:
        found = {"database": await run_in_threadpool(database_answers, database)}
        if kafka is not None:
            found["broker"] = await broker_reachable(kafka.servers)
        if caught_up is not None:
            found["stream_caught_up"] = caught_up()
        return found

    return checks


def add_probes(app: FastAPI, checks: ReadyChecks, *, metrics: HttpMetrics | None = None) -> None:
    """``/health``, ``/ready`` and (with ``metrics``) ``/metrics`` and the request counts."""

    @app.get("/health", tags=["probes"], include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "up"}

    @app.get("/ready", tags=["probes"], include_in_schema=False)
    async def ready() -> JSONResponse:
        found = await checks()
        ok = all(found.values())
        return JSONResponse({"ready": ok, "checks": found}, status_code=200 if ok else 503)

    if metrics is None:
        return

    @app.get("/metrics", tags=["probes"], include_in_schema=False)
    async def exported() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = request.method if request.method in _METHODS else "other"
            metrics.requests.labels(template, method, str(status)).inc()
            metrics.latency.labels(template, method).observe(time.perf_counter() - started)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def database_answers(engine: sa.Engine) -> bool:
    """Whether ``SELECT 1`` succeeds on ``engine``."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True

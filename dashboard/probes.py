"""The dashboard's ``/health``, ``/ready`` and ``/metrics`` (``docs/metrics.md``).

Public (no session: :data:`dashboard.gate.PUBLIC_ENDPOINTS`), like the sign-in form: they
show no data of the lake or the ledger. ``/ready``: the users database answers
``SELECT 1``. ``factorstream_dashboard_sign_ins_total{outcome, reason}`` counts the
sign-ins to the dashboard itself (``succeeded``; ``failed`` with the verifier's reason:
``unknown_user``, ``invalid_password``, ``invalid_code``, ``locked``, …; ``throttled``).
"""

from __future__ import annotations

import json
from typing import Any

import flask
import sqlalchemy as sa

HEALTH_ENDPOINT, READY_ENDPOINT, METRICS_ENDPOINT = (
    "factorstream_health",
    "factorstream_ready",
    "factorstream_metrics",
)
PROBE_ENDPOINTS = frozenset({HEALTH_ENDPOINT, READY_ENDPOINT, METRICS_ENDPOINT})
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DashboardMetrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter  # the optional extra ``metrics``

        self.registry = registry
        self.sign_ins = Counter(
            "factorstream_dashboard_sign_ins",
            "Sign-ins to the dashboard, by outcome and the refusal's reason.",
            ["outcome", "reason"],
            registry=registry,
        )
        self.expired_sessions = Counter(
            "factorstream_dashboard_sessions_expired",
            "Rows of sessions over deleted by retention (`retention.dashboard_sessions_days`).",
            registry=registry,
        )

    def signed_in(self, outcome: str, reason: str | None) -> None:
        self.sign_ins.labels(outcome, (reason or "none")[:64]).inc()

    def sessions_expired(self, deleted: int) -> None:
        self.expired_sessions.inc(deleted)


def install_probes(
    server: flask.Flask, *, users: sa.Engine, metrics: DashboardMetrics | None
) -> None:
    def health() -> flask.Response:
        return _json(200, {"status": "up"})

    def ready() -> flask.Response:
        checks = {"database": _answers(users)}
        ok = all(checks.values())
        return _json(200 if ok else 503, {"ready": ok, "checks": checks})

    server.add_url_rule("/health", HEALTH_ENDPOINT, health)
    server.add_url_rule("/ready", READY_ENDPOINT, ready)
    if metrics is None:
        return
    from prometheus_client.exposition import generate_latest

    registry = metrics.registry

    def exported() -> flask.Response:
        return flask.Response(generate_latest(registry), content_type=METRICS_CONTENT_TYPE)

    server.add_url_rule("/metrics", METRICS_ENDPOINT, exported)


def _json(status: int, body: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(body), status=status, content_type="application/json")


def _answers(engine: sa.Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True

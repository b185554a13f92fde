"""``factorstream ingest serve`` as a process on the real broker, scraped: accepted and
refused events and refusals by error, checked by ``promtool check metrics``; ``/ready``
follows the broker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from tests.integration.test_http_ingest import (  # noqa: F401 - the fixture
    BATCH,
    Ingest,
    curl,
    event,
    ingest,
)
from tests.integration.test_service_cli import tool
from tests.kafka_broker import KafkaBroker
from tests.prometheus import check_metrics, scrape, total


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_ingest_exports_accepted_and_refused_events_and_follows_the_broker(
    ingest: Ingest,  # noqa: F811
    kafka_broker: KafkaBroker,
) -> None:
    tool("curl")
    good = [event(f"metrics-{n}") for n in range(5)]
    status, _, body = curl(ingest, BATCH, json.dumps(good).encode())
    assert status == 202, body
    bad = [event("metrics-x"), {**event("metrics-y"), "type": "mfa.nonsense"}]
    status, _, body = curl(ingest, BATCH, json.dumps(bad).encode())
    assert status == 422, body
    assert _get(f"{ingest.url}/health") == (200, {"status": "up"})
    assert _get(f"{ingest.url}/ready") == (
        200,
        {"ready": True, "checks": {"database": True, "broker": True}},
    )
    with kafka_broker.outage():
        time.sleep(1)
        down, readiness = _get(f"{ingest.url}/ready")
    text = scrape(f"{ingest.url}/metrics")

    assert (down, readiness["checks"]["broker"]) == (503, False), readiness
    check_metrics(text)
    assert total(text, "factorstream_ingest_events_total", outcome="accepted") == 5
    assert total(text, "factorstream_ingest_events_total", outcome="refused") == 1
    assert total(text, "factorstream_ingest_refusals_total", error="events_refused") == 1
    assert total(text, "factorstream_ingest_delivery_duration_seconds_count") == 1
    assert (
        total(
            text,
            "factorstream_ingest_http_requests_total",
            route="/v1/events",
            status="202",
        )
        == 1
    )

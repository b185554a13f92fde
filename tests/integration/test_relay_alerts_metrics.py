"""``factorstream relay`` and ``factorstream alerts run`` as processes on the real broker,
with their probe port set, scraped: what they published and delivered is counted,
``promtool check metrics`` passes, ``/health`` and ``/ready`` answer."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from factorstream.bench.events import synthetic_events
from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from tests.factories import T0
from tests.integration.alerts.receivers import webhook_receiver
from tests.integration.alerts.test_alerts_run import ALERTS, _env
from tests.integration.conftest import sqlite_outbox
from tests.integration.test_worker import _produce, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.prometheus import check_metrics, scrape, total
from tests.unit.alerts.fixtures import risk

__all__ = ["topics"]  # the fixture, re-used from test_worker


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _scraped_when(url: str, done: Callable[[str], bool], *, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = scrape(url)
        except (urllib.error.URLError, ConnectionError):
            text = ""
        if text and done(text):
            return text
        assert time.monotonic() < deadline, f"not counted in time:\n{text[-3000:]}"
        time.sleep(0.5)


def test_the_relay_exports_what_it_published_and_its_pending_rows(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    database = tmp_path / "service.db"
    outbox = sqlite_outbox(database)
    events = synthetic_events(300, seed=7, subjects=30)
    with outbox.engine.begin() as connection:
        outbox.add(connection, events)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")},
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_OUTBOX_URL": f"sqlite:///{database}",
        "FACTORSTREAM_TOPICS__EVENTS": topic,
        "FACTORSTREAM_RELAY__PROBES_PORT": str(port),
    }
    command = [sys.executable, "-m", "factorstream.cli", "relay"]
    with running_worker(env, tmp_path / "relay.log", command):
        url = f"http://127.0.0.1:{port}"
        text = _scraped_when(
            f"{url}/metrics",
            lambda t: total(t, "factorstream_relay_published_events_total") >= len(events),
        )
        health, readiness = _get(f"{url}/health"), _get(f"{url}/ready")

    check_metrics(text)
    assert total(text, "factorstream_relay_published_events_total", outbox="verifiers") == 300
    assert total(text, "factorstream_relay_pending_events", outbox="verifiers") == 0
    assert total(text, "factorstream_relay_round_duration_seconds_count") >= 1
    assert health == (200, {"status": "up"})
    assert readiness == (
        200,
        {"ready": True, "checks": {"database_verifiers": True, "broker": True}},
    )


def test_alerts_run_exports_alerts_delivered_and_dead_lettered_per_destination(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    events = [risk(subject=f"m-{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
    secret = tmp_path / "k"
    secret.write_bytes(b"k")
    port = free_port()
    with (
        webhook_receiver(free_port(), tmp_path / "ok.jsonl", secret) as ok,
        webhook_receiver(
            free_port(), tmp_path / "refusing.jsonl", secret, "--status", "400"
        ) as refusing,
    ):
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {"name": n, "kind": "webhook", "url": r.url, "secret_file": str(secret)}
                for n, r in (("soc", ok), ("refusing", refusing))
            ],
            min_severity="low",
            dead_letter_topic=f"{topics.events}.alerts-dlq",
            probes_port=str(port),
        )
        _produce(kafka_broker.bootstrap, topics.anomalies, events)
        with running_worker(env, tmp_path / "alerts.log", ALERTS):
            url = f"http://127.0.0.1:{port}"
            text = _scraped_when(
                f"{url}/metrics",
                lambda t: total(t, "factorstream_alerts_deliveries_total") >= 2 * len(events),
            )
            readiness = _get(f"{url}/ready")

    check_metrics(text)
    assert readiness == (200, {"ready": True, "checks": {"broker": True}})
    delivered = {"destination": "soc", "outcome": "delivered"}
    assert total(text, "factorstream_alerts_deliveries_total", **delivered) == 5
    refused = {"destination": "refusing", "outcome": "dead_lettered"}
    assert total(text, "factorstream_alerts_deliveries_total", **refused) == 5
    assert (
        total(
            text,
            "factorstream_alerts_dead_letters_total",
            destination="refusing",
            reason="HTTP 400",
        )
        == 5
    )

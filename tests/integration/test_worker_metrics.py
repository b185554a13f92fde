"""A real worker on the real broker, scraped: ``/metrics`` counts what went through,
``promtool check metrics`` passes, ``/health`` answers, ``/ready`` follows the broker."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from schemas.fields import PolicyTier
from tests.factories import sample_event
from tests.integration.records import consume
from tests.integration.test_worker import (
    _api,
    _failures,
    _kcat_produce,
    _produce,
    _worker_env,
    kcat,
    running_worker,
    topics,
)
from tests.kafka_broker import KafkaBroker
from tests.prometheus import check_metrics, has, scrape, total
from verifiers.policy import TIERS

__all__ = ["kcat", "topics"]  # the fixtures, re-used from test_worker

BUSINESS = TIERS[PolicyTier.BUSINESS]


def _probe(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _until(check: Any, *, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_the_worker_exports_what_went_through_and_says_when_it_is_ready(
    kafka_broker: KafkaBroker,
    topics: TopicSettings,
    kcat: str,
    tmp_path: Path,
) -> None:
    bootstrap, port, log = kafka_broker.bootstrap, free_port(), tmp_path / "worker.log"
    locked = _failures("u-lock", BUSINESS.max_failures)
    others = [sample_event("mfa.verification.succeeded", subject=f"u-{i}") for i in range(20)]
    junk = [("acme/u-junk", "this is { not json"), ("acme/u-junk", '{"type": 1}')]
    env = _worker_env(kafka_broker, topics, tmp_path, port)
    with running_worker(env, log) as process:
        _api(port, "/lockouts/acme/warm-up", process=process, log=log)
        assert _probe(port, "/health") == (200, {"status": "up"})
        _kcat_produce(kcat, bootstrap, topics.events, junk)
        _produce(bootstrap, topics.events, [*locked, *others])
        consume(bootstrap, topics.lockouts, at_least=1, timeout_s=120)
        consume(bootstrap, topics.dlq, at_least=len(junk), timeout_s=30)
        url = f"http://127.0.0.1:{port}/metrics"

        def counted() -> str | None:
            text = scrape(url)
            consumed = total(
                text, "factorstream_worker_records_consumed_total", topic=topics.events
            )
            sinks = [
                total(text, "factorstream_ledger_appended_events_total"),
                total(text, "factorstream_lake_written_events_total"),
            ]
            done = consumed >= len(locked) + len(others) + len(junk) and min(sinks) > 0
            return text if done else None

        text = _until(counted)
        assert text, scrape(url)
        ready = _until(lambda: _probe(port, "/ready")[0] == 200)
        status, body = _probe(port, "/ready")
        assert (status, body["ready"]) == (200, True), body
        assert ready

        with kafka_broker.outage():
            down = _until(lambda: _probe(port, "/ready")[0] == 503, timeout_s=30)
            status, body = _probe(port, "/ready")
            assert _probe(port, "/health")[0] == 200  # up, though not ready
        assert down and body["checks"]["broker"] is False, body
        assert process.poll() is None

    check_metrics(text)
    events = len(locked) + len(others) + len(junk)
    assert (
        total(
            text,
            "factorstream_worker_records_consumed_total",
            runner="subjects",
            topic=topics.events,
        )
        == events
    )
    assert total(text, "factorstream_worker_records_produced_total", topic=topics.dlq) == 2
    assert total(text, "factorstream_worker_dead_letters_total") == 2
    assert total(text, "factorstream_worker_dead_letters_total", field="event") == 1
    assert total(text, "factorstream_worker_records_produced_total", topic=topics.lockouts) == 1
    assert total(text, "factorstream_worker_derived_events_total", type="lockout.applied") == 1
    assert total(text, "factorstream_worker_batch_duration_seconds_count", runner="subjects") >= 1
    assert has(text, "factorstream_worker_consumer_lag_records")
    lag = total(text, "factorstream_worker_consumer_lag_records", topic=topics.events)
    assert 0 <= lag <= events
    # the ledger and lake sinks of the default roles
    assert total(text, "factorstream_ledger_appended_events_total") >= 1
    assert total(text, "factorstream_ledger_tree_size_entries") >= 1
    assert total(text, "factorstream_lake_write_duration_seconds_count") >= 1

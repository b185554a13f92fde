"""``factorstream sink ledger|lake`` on a real broker: a plain consumer group per sink
(``streams/sink_host.py``). Killed with SIGKILL in the middle of a backlog and started
again, joined by a second process of its group (a rebalance), each sink holds every event
exactly once; on SIGTERM, SIGINT and SIGHUP it stops promptly and cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analytics.views import connect, fetch
from factorstream.bench.events import synthetic_events
from factorstream.localkafka import ensure_topics, free_port
from factorstream.settings import Settings, TopicSettings
from factorstream.stream_config import ledger_of
from schemas import Event
from streams.app import INGESTED_SUFFIX
from streams.topic_reading import group_lag
from tests.integration.test_worker import ROOT, _produce, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.support import wait_for

__all__ = ["topics"]  # the fixture, re-used from test_worker

EVENTS = 6_000


def _sink(name: str) -> list[str]:
    return [sys.executable, "-m", "factorstream.cli", "sink", name]


def _lake_counts(lake: Path) -> tuple[int, int]:
    """Rows of the lake's events table, and distinct event ids among them."""
    if not (lake / "events").exists():
        return 0, 0
    con = connect(lake)
    try:
        found = fetch(con, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM events")
        return int(found["n"][0]), int(found["ids"][0])
    finally:
        con.close()


def _backlog(kafka_broker: KafkaBroker, topics: TopicSettings, app_id: str) -> list[Event]:
    """What the worker would have written: events on its ingested topic, a few derived."""
    events = synthetic_events(EVENTS, subjects=300)
    ingested = f"{app_id}-{INGESTED_SUFFIX}"
    ensure_topics(kafka_broker.bootstrap, {ingested: topics.events_partitions})
    _produce(kafka_broker.bootstrap, ingested, events[: EVENTS - 200])
    _produce(kafka_broker.bootstrap, topics.lockouts, events[EVENTS - 200 :])
    return events


def _lag(env: dict[str, str], topics: TopicSettings, name: str) -> int | None:
    app_id = env["FACTORSTREAM_STREAM__APP_ID"]
    sources = [f"{app_id}-{INGESTED_SUFFIX}", topics.lockouts, topics.anomalies]
    return group_lag(env["FACTORSTREAM_KAFKA_BOOTSTRAP"], f"{app_id}-{name}", sources)


@pytest.mark.parametrize("name", ["lake", "ledger"])
def test_a_sink_killed_and_joined_mid_backlog_holds_every_event_once(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path, name: str
) -> None:
    data = tmp_path / "data"
    env = _worker_env(kafka_broker, topics, data, free_port()) | {
        "FACTORSTREAM_LAKE__BATCH_ROWS": "500",
        "FACTORSTREAM_LEDGER__BATCH_SIZE": "500",
    }
    settings = Settings(data_dir=data)
    events = _backlog(kafka_broker, topics, env["FACTORSTREAM_STREAM__APP_ID"])

    def held() -> tuple[int, int]:
        if name == "lake":
            return _lake_counts(data / "lake")
        ledger = ledger_of(settings)
        rows = [row.event["id"] for row in ledger.rows()]
        return len(rows), len(set(rows))

    def some_held() -> bool:  # cheap, polled: a sink can take the backlog in a second
        return 0 < (held()[0] if name == "lake" else ledger_of(settings).size())

    first = running_worker(env, tmp_path / "sink-1.log", _sink(name))
    with first as process:
        wait_for(some_held, what="the first batches held", timeout=120)
        process.send_signal(signal.SIGKILL)  # mid-backlog: batches written, not committed
        process.wait(timeout=30)
    assert held()[0] < len(events), "the kill came too late to test anything"
    with (
        running_worker(env, tmp_path / "sink-2.log", _sink(name)),
        running_worker(env, tmp_path / "sink-3.log", _sink(name)),  # a rebalance
    ):
        wait_for(lambda: _lag(env, topics, name) == 0, what="the backlog committed", timeout=180)
    rows, ids = held()
    assert ids == len(events), "every event held"
    assert rows == len(events), "none held twice"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_sink_stops_promptly_and_cleanly_on_each_signal(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path, signum: signal.Signals
) -> None:
    env = _worker_env(kafka_broker, topics, tmp_path / "data", free_port())
    log = tmp_path / "sink.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            _sink("lake"), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: b"sink " in log.read_bytes(), what="the sink started", timeout=60)
        time.sleep(3)  # joined its group
        started = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, log.read_text()
    assert time.monotonic() - started < 15
    assert "Traceback" not in log.read_text()

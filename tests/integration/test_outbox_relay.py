"""The outbox publisher on a real broker: round trip, outage, crash of the relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard.app import open_directory
from dashboard.auth import sign_in
from dashboard.users import TENANT
from factorstream.bench.events import synthetic_events
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
from schemas import Event
from schemas.fields import Client
from tests.integration.conftest import count_sent, sqlite_outbox
from tests.integration.records import consume, first_seen, ids_by_key
from tests.kafka_broker import KafkaBroker
from verifiers.publish import Backoff, Outbox, OutboxRelay, kafka_producer_factory

TEN_THOUSAND = 10_000


def _expected_by_key(events: list[Event]) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        expected[event.partitionkey].append(event.id)
    return dict(expected)


def _stage(outbox: Outbox, events: list[Event], per_transaction: int = 500) -> None:
    for start in range(0, len(events), per_transaction):
        with outbox.engine.begin() as connection:
            outbox.add(connection, events[start : start + per_transaction])


def test_ten_thousand_events_round_trip_in_order_per_key(
    kafka_broker: KafkaBroker, topic: str, outbox: Outbox
) -> None:
    events = synthetic_events(TEN_THOUSAND, seed=11, subjects=300)
    _stage(outbox, events)
    relay = OutboxRelay(
        outbox, topic=topic, producer_factory=kafka_producer_factory(kafka_broker.bootstrap)
    )
    relay.drain(timeout_s=120)
    assert outbox.pending() == 0

    records = consume(kafka_broker.bootstrap, topic, at_least=TEN_THOUSAND)
    assert len(records) == TEN_THOUSAND  # a healthy broker: no re-sends at all
    sent = {event.id: event for event in events}
    for record in records:
        assert record.headers == [("content-type", b"application/cloudevents+json")]
        received = record.event()
        assert received == sent[received.id]
    assert ids_by_key(records) == _expected_by_key(events)


def test_events_staged_while_the_broker_is_down_all_arrive(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    outbox = sqlite_outbox(tmp_path / "service.db")
    events = synthetic_events(TEN_THOUSAND, seed=12, subjects=300)
    stop = threading.Event()
    relay = OutboxRelay(
        outbox,
        topic=topic,
        producer_factory=kafka_producer_factory(
            kafka_broker.bootstrap,
            max_block_ms=2000,
            request_timeout_ms=2000,
            delivery_timeout_ms=4000,
        ),
        backoff=Backoff(initial_s=0.2, max_s=1.0),
    )
    worker = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    with kafka_broker.outage():
        worker.start()
        _stage(outbox, events)
        time.sleep(3)  # the relay keeps trying against a dead broker
        assert outbox.pending() == TEN_THOUSAND
    deadline = time.monotonic() + 120
    while outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    worker.join(timeout=30)
    assert outbox.pending() == 0

    records = consume(kafka_broker.bootstrap, topic, at_least=TEN_THOUSAND)
    assert {r.event().id for r in records} == {e.id for e in events}
    by_key = ids_by_key(records)
    assert {key: first_seen(ids) for key, ids in by_key.items()} == _expected_by_key(events)


def test_kill_9_of_the_relay_mid_run_loses_nothing(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    database = tmp_path / "service.db"
    outbox = sqlite_outbox(database)
    events = synthetic_events(TEN_THOUSAND, seed=13, subjects=300)
    _stage(outbox, events)
    env = {
        **os.environ,
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_OUTBOX_URL": f"sqlite:///{database}",
        "FACTORSTREAM_TOPICS__EVENTS": topic,
        "FACTORSTREAM_RELAY__BATCH_SIZE": "250",
    }
    command = [sys.executable, "-m", "factorstream.cli", "relay"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while count_sent(outbox) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    sent_before_crash = count_sent(outbox)
    assert 0 < sent_before_crash < TEN_THOUSAND, "the kill did not land mid-run"

    second = subprocess.run([*command, "--drain"], env=env, capture_output=True, timeout=120)
    assert second.returncode == 0, second.stderr.decode()
    assert outbox.pending() == 0

    records = consume(kafka_broker.bootstrap, topic, at_least=TEN_THOUSAND)
    ids = [r.event().id for r in records]
    assert set(ids) == {e.id for e in events}  # none lost
    by_key = ids_by_key(records)
    assert {key: first_seen(k) for key, k in by_key.items()} == _expected_by_key(events)
    print(
        f"relay killed after {sent_before_crash} marked sent; "
        f"{len(ids) - TEN_THOUSAND} re-sent duplicates, all with their original id"
    )


CRASH_AFTER_SEND = """
import os, signal, sys
from factorstream.cli.relay import build_relay
from factorstream.settings import Settings
from verifiers.publish import OutboxRelay

send = OutboxRelay._send
def send_then_die(self, rows):
    delivered = send(self, rows)   # the broker has acknowledged these rows
    if self.published > 0:         # second batch: die before marking them sent
        os.kill(os.getpid(), signal.SIGKILL)
    return delivered
OutboxRelay._send = send_then_die
build_relay(Settings()).drain(timeout_s=60)
"""


def test_kill_9_between_acknowledgement_and_marking_resends_with_the_same_ids(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    database = tmp_path / "service.db"
    outbox = sqlite_outbox(database)
    events = synthetic_events(1_000, seed=14, subjects=50)
    _stage(outbox, events)
    env = {
        **os.environ,
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_OUTBOX_URL": f"sqlite:///{database}",
        "FACTORSTREAM_TOPICS__EVENTS": topic,
        "FACTORSTREAM_RELAY__BATCH_SIZE": "300",
    }
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_SEND], env=env, timeout=120)
    assert crashed.returncode == -signal.SIGKILL
    assert count_sent(outbox) == 300  # the second batch reached Kafka but is not marked

    restarted = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "relay", "--drain"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert restarted.returncode == 0, restarted.stderr.decode()
    records = consume(kafka_broker.bootstrap, topic, at_least=1_300)
    ids = [r.event().id for r in records]
    assert len(ids) == 1_300  # 300 events were published twice ...
    second_batch = {e.id for e in events[300:600]}
    duplicated = {event_id for event_id, n in Counter(ids).items() if n == 2}
    assert duplicated == second_batch  # ... exactly the unmarked batch, with the same ids
    by_key = ids_by_key(records)
    assert {key: first_seen(k) for key, k in by_key.items()} == _expected_by_key(events)


def test_the_relay_publishes_the_dashboards_own_sign_in_failures(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    """A password sprayed at the audit console reaches the pipeline (detections, ledger,
    IP blocks) like any other failed sign-in: ``relay`` publishes the dashboard's outbox
    too, beside the verifiers' one."""
    settings = Settings(data_dir=tmp_path / "data")
    directory = open_directory(dashboard_config(settings))
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    directory.add("ann", role="auditor", password="a long passphrase", now=now)
    refused = sign_in(
        directory,
        name="ann",
        password="Spring2026!",
        code="000000",
        now=now + timedelta(seconds=5),
        client=Client(ip="203.0.113.9", user_agent="spray/1.0"),
    )
    assert refused.user is None
    staged = directory.store.outbox.pending()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")} | {
        "FACTORSTREAM_DATA_DIR": str(settings.data_dir),
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_TOPICS__EVENTS": topic,
    }
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "relay", "--drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert directory.store.outbox.pending() == 0
    events = [r.event() for r in consume(kafka_broker.bootstrap, topic, at_least=staged)]
    (failure,) = [e for e in events if e.type == "auth.login.attempted"]
    assert failure.tenant == TENANT and failure.data.outcome == "failure"
    assert failure.data.client is not None and failure.data.client.ip == "203.0.113.9"
    assert "dashboard.db" in "".join(done.stdout.split())  # the console wraps long lines
    assert not (tmp_path / "data" / "outbox.db").stat().st_mode & 0o077  # the CLI's umask

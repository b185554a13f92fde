"""The simulator on a real broker: through the outbox relay (the default path) every event
arrives once, in order per subject; fast mode produces straight to the topic."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from factorstream.cli.context import load_into
from factorstream.cli.simulate import simulate
from factorstream.simulator import driver
from factorstream.simulator.output import KafkaSink, OutboxTail, StreamDigest
from factorstream.simulator.run import (
    SimulationPlan,
    fast_simulation,
    verifier_simulation,
    verifier_store,
)
from schemas import decode
from tests.integration.records import consume, first_seen, ids_by_key
from tests.kafka_broker import KafkaBroker
from verifiers.publish import OutboxRelay, kafka_producer_factory

PLAN = SimulationPlan(
    until=datetime(2026, 11, 20, tzinfo=UTC),
    seed=9,
    users=10,
    days=2,
    scenarios=("credential_stuffing", "push_bombing"),
)


def test_verifier_events_reach_the_topic_through_the_relay(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    store = verifier_store(tmp_path / "verifiers.db", seed=PLAN.seed)
    simulation = verifier_simulation(PLAN, store)
    relay = OutboxRelay(
        store.outbox, topic=topic, producer_factory=kafka_producer_factory(kafka_broker.bootstrap)
    )
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop,))
    relaying.start()  # publishing while the simulation writes, as the CLI does
    digest, values = StreamDigest(), list[bytes]()
    driver.backfill(simulation, driver.outbox_pump(store, digest, None))
    stop.set()
    relaying.join()
    relay.drain(timeout_s=120)
    OutboxTail(store.engine).drain(values.extend)
    records = consume(kafka_broker.bootstrap, topic, at_least=len(values))
    expected: dict[str, list[str]] = defaultdict(list)
    for value in values:
        event = decode(value)
        expected[event.partitionkey].append(event.id)
    got = {key: first_seen(ids) for key, ids in ids_by_key(records).items()}
    assert got == dict(expected)
    assert digest.count == len(values) > 100


def test_fast_mode_produces_straight_to_the_topic(kafka_broker: KafkaBroker, topic: str) -> None:
    simulation, service = fast_simulation(PLAN)
    producer = kafka_producer_factory(kafka_broker.bootstrap)()
    sink, digest = KafkaSink(producer, topic), StreamDigest()
    driver.backfill(simulation, driver.fast_pump(service, digest, sink))
    sink.close()
    records = consume(kafka_broker.bootstrap, topic, at_least=digest.count)
    assert len(records) == digest.count > 100
    assert all(r.key == r.event().partitionkey.encode() for r in records)


def test_the_command_publishes_the_same_stream_it_writes_to_a_file(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACTORSTREAM_TOPICS__EVENTS", topic)
    app = typer.Typer()
    app.callback()(load_into)
    app.command()(simulate)
    common = ["simulate", "--users", "6", "--days", "1", "--seed", "4"]
    common += ["--until", "2026-11-20T00:00:00", "--scenario", "sms_pumping"]
    path = tmp_path / "events.jsonl"
    for extra in (["--jsonl", str(path)], ["--bootstrap", kafka_broker.bootstrap]):
        result = CliRunner().invoke(app, [*common, *extra])
        assert result.exit_code == 0, result.output
    written = path.read_bytes().splitlines()
    records = consume(kafka_broker.bootstrap, topic, at_least=len(written))
    assert sorted(r.value for r in records) == sorted(written)
    assert len(written) > 100

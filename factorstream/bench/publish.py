"""``bench publish``: the outbox relay against a bare kafka-python producer.

Both send the same pre-encoded events (same keys, values and headers) with the same
producer configuration (idempotent, ``acks=all``, same linger and batch size) to
6-partition topics on the same broker, and both wait for every acknowledgement. The
relay additionally reads the rows from a SQLite outbox and marks them sent; filling the
outbox is the service's cost, not the relay's, and is not timed.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from factorstream.bench import BenchResult, Measurement
from factorstream.bench.broker import broker_for
from factorstream.bench.events import synthetic_events
from factorstream.localkafka import ensure_topics
from factorstream.settings import Settings
from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers
from verifiers.publish import Outbox, OutboxRelay, Producer, kafka_producer_factory, outbox_engine


def run(*, settings: Settings, quick: bool, bootstrap: str | None) -> BenchResult:
    count, rounds = (2_000, 1) if quick else (20_000, 3)
    events = synthetic_events(count)
    with broker_for(settings, bootstrap) as on_broker:
        broker = on_broker.kafka()
        prefix = f"bench.publish.{uuid.uuid4().hex[:8]}"
        ensure_topics(broker, {f"{prefix}.bare": 6, f"{prefix}.relay": 6})
        factory = kafka_producer_factory(broker, linger_ms=settings.relay.linger_ms)
        bare_best = relay_best = 0.0
        for _ in range(rounds):
            bare_best = max(bare_best, _bare_round(factory, f"{prefix}.bare", events))
            relay_best = max(relay_best, _relay_round(factory, f"{prefix}.relay", events))
    return BenchResult(
        bench="publish",
        baseline=Measurement("bare kafka-python producer, same bytes", bare_best, rounds, count),
        contenders=[Measurement("outbox relay (SQLite → Kafka)", relay_best, rounds, count)],
        goal_ratio=0.8,
        goal_text="relay ≥ 0.8× bare producer",
        notes={
            "events": f"{count:,}, idempotent producer, acks=all, 6 partitions",
            "broker": broker.bootstrap,
        },
    )


def _warm(factory: Callable[[], Producer], topic: str) -> Producer:
    """A producer that has connected and initialised its idempotent id (not timed)."""
    producer = factory()
    producer.send(topic, value=b"{}", key=b"warm-up", headers=[]).get(timeout=30)
    return producer


def _bare_round(factory: Callable[[], Producer], topic: str, events: Sequence[Event]) -> float:
    producer = _warm(factory, topic)
    records = [(kafka_key(event), encode(event)) for event in events]
    headers = structured_headers()
    started = time.perf_counter()
    futures = [
        producer.send(topic, value=value, key=key, headers=headers) for key, value in records
    ]
    producer.flush(timeout=60)
    for future in futures:
        future.get(timeout=60)
    elapsed = time.perf_counter() - started
    producer.close(timeout=5)
    return len(records) / elapsed


def _relay_round(factory: Callable[[], Producer], topic: str, events: Sequence[Event]) -> float:
    with tempfile.TemporaryDirectory(prefix="factorstream-bench-") as tmp:
        outbox = Outbox(outbox_engine(f"sqlite:///{Path(tmp) / 'outbox.db'}"))
        outbox.create()
        with outbox.engine.begin() as connection:
            outbox.add(connection, events)
        producer = _warm(factory, topic)
        relay = OutboxRelay(outbox, topic=topic, producer_factory=lambda: producer)
        started = time.perf_counter()
        relay.drain(timeout_s=600)
        elapsed = time.perf_counter() - started
        producer.close(timeout=5)
        assert outbox.pending() == 0  # noqa: S101 - a benchmark that lost events is void
        outbox.engine.dispose()
        return relay.published / elapsed

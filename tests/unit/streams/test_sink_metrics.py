"""The ledger sink's metrics: the last checkpoint's timestamp is absent until the ledger
has a checkpoint (never a 0 that reads as 56 years old), starts from the ledger as an
earlier process left it and follows the checkpoints signed; so does the tree size. The
sink host's progress is what its probes report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from schemas import encode
from streams.metrics import StreamMetrics
from streams.sink_host import SinkProgress
from streams.sinks import LedgerSink
from tests.factories import T0, sample_event
from tests.prometheus import check_metrics
from tests.unit.audit.ledger_support import open_test_ledger

CHECKPOINT = "factorstream_ledger_last_checkpoint_timestamp_seconds"
TREE = "factorstream_ledger_tree_size_entries"
EVERY = 10  # open_test_ledger: a checkpoint every 10 entries


def _sink(tmp_path: Path, clock: list[datetime]) -> LedgerSink:
    ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", every=EVERY)
    return LedgerSink(ledger, send=None, clock=lambda: clock[0])


def _events(n: int, prefix: str) -> list[bytes]:
    return [encode(sample_event(subject=f"{prefix}-{i}", now=T0)) for i in range(n)]


def test_no_checkpoint_timestamp_until_the_ledger_signs_one(tmp_path: Path) -> None:
    clock = [T0]
    sink = _sink(tmp_path, clock)
    registry = CollectorRegistry()
    sink.measure_with(StreamMetrics(registry))
    assert registry.get_sample_value(CHECKPOINT) is None
    assert CHECKPOINT not in generate_latest(registry).decode()
    assert registry.get_sample_value(TREE) == 0

    asyncio.run(sink.write(_events(EVERY - 1, "a")))  # too few for a checkpoint
    assert registry.get_sample_value(TREE) == EVERY - 1
    assert registry.get_sample_value(CHECKPOINT) is None
    restarted = CollectorRegistry()  # entries, no checkpoint yet: still absent
    _sink(tmp_path, clock).measure_with(StreamMetrics(restarted))
    assert restarted.get_sample_value(CHECKPOINT) is None
    assert restarted.get_sample_value(TREE) == EVERY - 1

    clock[0] = T0 + timedelta(minutes=3)
    asyncio.run(sink.write(_events(1, "b")))  # the tenth entry: a checkpoint
    assert registry.get_sample_value(CHECKPOINT) == clock[0].timestamp()
    check_metrics(generate_latest(registry).decode())


def test_the_checkpoint_timestamp_and_tree_size_start_from_the_ledger(tmp_path: Path) -> None:
    clock = [T0]
    earlier = _sink(tmp_path, clock)  # an earlier process
    asyncio.run(earlier.write(_events(EVERY + 2, "a")))
    assert earlier.ledger.last_checkpoint_at() == T0

    registry = CollectorRegistry()
    again = _sink(tmp_path, clock)  # the process restarted
    again.measure_with(StreamMetrics(registry))
    assert registry.get_sample_value(CHECKPOINT) == T0.timestamp()
    assert registry.get_sample_value(TREE) == EVERY + 2

    clock[0] = T0 + timedelta(minutes=7)
    asyncio.run(again.write(_events(EVERY, "b")))
    assert registry.get_sample_value(CHECKPOINT) == clock[0].timestamp()
    assert registry.get_sample_value(TREE) == 2 * EVERY + 2


def test_the_sink_host_progress_reports_assigned_partitions_only() -> None:
    progress = SinkProgress()
    assert not progress.partitions_assigned  # starting: not joined yet
    one, two = TopicPartition("t", 0), TopicPartition("t", 1)
    progress.assigned, progress.rebalancing = frozenset({one}), False
    progress.offsets = {one: (10, 7), two: (5, 5)}  # two was revoked since
    assert progress.partitions_assigned
    assert list(progress.partition_offsets()) == [("t", 0, 10, 7)]
    progress.rebalancing = True
    assert not progress.partitions_assigned

"""The worker's Prometheus metrics (``docs/metrics.md``), on a registry it is given.

Counted where the work happens (the engine's runners, the sinks); read when scraped
(consumer lag and held commits, from the consumer's own bookkeeping). Labels have bounded
cardinality: topics, runners, event types, the field a dead letter failed on — never a
subject, a tenant or an address. The front door builds a :class:`StreamMetrics` when
``prometheus_client`` (extra ``metrics``) is installed and serves it at ``/metrics``
(``register_metrics_api``); without it the engine counts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a batch, an append, a lake file."""
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
"""Seconds from a record's timestamp to the end of its batch."""
DLQ_FIELD_DEPTH = 2
"""A dead letter's label is the first segments of the field it failed on (``data.code``)."""

PartitionOffsets = Callable[[], Iterable[tuple[str, int, int, int]]]
"""(topic, partition, log end offset, committed offset) of each assigned partition."""
HeldCommits = Callable[[], Iterable[tuple[str, int, int]]]
"""(topic, partition, commits in a row held) of each partition whose commit is held."""


class StreamMetrics:
    """Every metric a worker process exports (one per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.records_consumed = Counter(
            "factorstream_worker_records_consumed",
            "Records a runner processed and acknowledged, by runner and source topic.",
            ["runner", "topic"],
            registry=registry,
        )
        self.records_produced = Counter(
            "factorstream_worker_records_produced",
            "Records the stages produced (forwards, derived events, dead letters), by topic.",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "factorstream_worker_batch_duration_seconds",
            "Time to process one batch and have its records durable, by runner.",
            ["runner"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.record_age_seconds = Histogram(
            "factorstream_worker_record_age_seconds",
            "Age of a batch's oldest record (its Kafka timestamp) when the batch is done.",
            ["runner"],
            buckets=AGE_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "factorstream_worker_dead_letters",
            "Records sent to the dead-letter topic, by the field that failed to decode.",
            ["field"],
            registry=registry,
        )
        self.derived = Counter(
            "factorstream_worker_derived_events",
            "Events the folds derived (detections, lockouts, IP blocks), by stage and type.",
            ["stage", "type"],
            registry=registry,
        )
        self.ledger_append_seconds = Histogram(
            "factorstream_ledger_append_duration_seconds",
            "Time to append one transaction of events to the ledger (retries included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ledger_appended = Counter(
            "factorstream_ledger_appended_events",
            "Events appended to the ledger (an id already held is not counted).",
            registry=registry,
        )
        self.ledger_tree_size = Gauge(
            "factorstream_ledger_tree_size_entries",
            "Entries in the ledger's Merkle tree after the last append.",
            registry=registry,
        )
        self.ledger_checkpoint = LastCheckpoint()
        registry.register(self.ledger_checkpoint)
        self.lake_write_seconds = Histogram(
            "factorstream_lake_write_duration_seconds",
            "Time to write one chunk of events into the lake's Parquet files.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.lake_rows = Counter(
            "factorstream_lake_written_events",
            "Events written to the lake.",
            registry=registry,
        )
        self.retention_removed = Counter(
            "factorstream_retention_removed",
            "What retention removed, by store: `lake` date partitions deleted, `ledger` "
            "subject data keys destroyed (their entries' personal fields shredded).",
            ["store"],
            registry=registry,
        )

    def consumer(self, offsets: PartitionOffsets, held: HeldCommits) -> None:
        """Export consumer lag and held commits, read from the consumer when scraped."""
        self.registry.register(ConsumerCollector(offsets, held))

    def batch_done(
        self, runner: str, counts: dict[str, int], started: float, oldest_s: float | None
    ) -> None:
        """A runner's batch is processed and acknowledged: ``counts`` records by topic,
        ``started`` on :func:`time.perf_counter`, ``oldest_s``: the oldest record's Kafka
        timestamp (Unix seconds)."""
        self.batch_seconds.labels(runner).observe(time.perf_counter() - started)
        for topic, count in counts.items():
            self.records_consumed.labels(runner, topic).inc(count)
        if oldest_s is not None:
            self.record_age_seconds.labels(runner).observe(max(0.0, time.time() - oldest_s))

    def produced(self, topics: Sequence[str], dead_letter_fields: Sequence[str]) -> None:
        """Records sent (one topic name each) and, among them, the dead letters' fields."""
        counts: dict[str, int] = {}
        for topic in topics:
            counts[topic] = counts.get(topic, 0) + 1
        for topic, count in counts.items():
            self.records_produced.labels(topic).inc(count)
        for field in dead_letter_fields:
            label = ".".join(field.split(".")[:DLQ_FIELD_DEPTH])[:64] or "unknown"
            self.dead_letters.labels(label).inc()

    def ledger_appended_batch(self, seconds: float, appended: int, size: int) -> None:
        self.ledger_append_seconds.observe(seconds)
        self.ledger_appended.inc(appended)
        self.ledger_tree_size.set(size)

    def checkpoint_signed(self, at: datetime) -> None:
        self.ledger_checkpoint.signed(at)


class LastCheckpoint(Collector):
    """When the ledger's newest checkpoint was signed: absent until there is one (a
    timestamp of 0 would read as a checkpoint 56 years old, or hide a ledger that never
    signed one; the alert rules tell both cases apart)."""

    NAME = "factorstream_ledger_last_checkpoint_timestamp_seconds"
    HELP = "When the ledger's newest checkpoint was signed (Unix time); absent until one is."

    def __init__(self) -> None:
        self.at_s: float | None = None

    def signed(self, at: datetime) -> None:
        self.at_s = max(at.timestamp(), self.at_s or 0.0)

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.NAME, self.HELP)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.at_s is not None:
            yield GaugeMetricFamily(self.NAME, self.HELP, value=self.at_s)


class ConsumerCollector(Collector):
    """Consumer lag per partition and held commits, computed at each scrape."""

    def __init__(self, offsets: PartitionOffsets, held: HeldCommits) -> None:
        self.offsets, self.held = offsets, held

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read at scrape time only (no sample before partitions are assigned)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "factorstream_worker_consumer_lag_records",
            "Records in an assigned partition after the committed offset.",
            labels=["topic", "partition"],
        )
        end = GaugeMetricFamily(
            "factorstream_worker_partition_end_offset",
            "The log end offset of an assigned partition, as the consumer last saw it.",
            labels=["topic", "partition"],
        )
        for topic, partition, log_end, committed in self.offsets():
            end.add_metric([topic, str(partition)], log_end)
            lag.add_metric([topic, str(partition)], max(0, log_end - committed))
        held = GaugeMetricFamily(
            "factorstream_worker_commit_held_commits",
            "Commits in a row held at one offset (a record before it is not acknowledged).",
            labels=["topic", "partition"],
        )
        for topic, partition, times in self.held():
            held.add_metric([topic, str(partition)], times)
        yield lag
        yield end
        yield held

"""Reading back what reached a topic, with an independent consumer (kafka-python)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from schemas import Event, decode


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    def event(self) -> Event:
        return decode(self.value, self.headers)


def consume(bootstrap: str, topic: str, *, at_least: int, timeout_s: float = 60) -> list[Record]:
    """Every record of ``topic`` from the beginning, once ``at_least`` have arrived."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                records += [
                    Record(m.partition, m.offset, m.key, m.value, list(m.headers)) for m in batch
                ]
            if len(records) >= at_least:
                end = consumer.end_offsets(partitions)
                if all(consumer.position(tp) >= end[tp] for tp in partitions):
                    return records
    finally:
        consumer.close()
    raise AssertionError(f"only {len(records)} of {at_least} records arrived on {topic}")


def ids_by_key(records: list[Record]) -> dict[str, list[str]]:
    """Event ids per partition key, in the order a consumer of each partition sees them."""
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    by_key: dict[str, list[str]] = defaultdict(list)
    for record in ordered:
        event = record.event()
        assert record.key == event.partitionkey.encode()
        by_key[event.partitionkey].append(event.id)
    return dict(by_key)


def first_seen(ids: list[str]) -> list[str]:
    """``ids`` with re-sent duplicates dropped, as a deduplicating consumer would."""
    return list(dict.fromkeys(ids))


def group_offsets(bootstrap: str, group: str) -> dict[str, int]:
    """The consumer group's committed offsets, as ``{"topic[partition]": offset}``."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return {f"{tp.topic}[{tp.partition}]": meta.offset for tp, meta in sorted(offsets.items())}
    finally:
        admin.close()

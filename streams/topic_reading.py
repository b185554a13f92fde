"""Reading topics to their end: the events log for a replay, a worker's changelogs.

kafka-python, outside any consumer group (partitions assigned by hand, nothing
committed): reading never disturbs the worker. Each function takes the cluster as a
``verifiers.kafka_connection.KafkaConnection`` (or a bare bootstrap string: PLAINTEXT).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams.positions import JsonState
from streams.replay import Tables, TopicRecord, stored_fold_tables
from streams.topology import Topology
from verifiers.kafka_connection import KafkaTarget, as_connection, kafka_python_config


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust keeps a table in."""
    return f"{app_id}-{table}-changelog"


def read_to_end(
    kafka: KafkaTarget,
    topic: str,
    *,
    timeout_s: float = 30.0,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[TopicRecord]:
    """Every record of ``topic`` up to the end offsets it had when reading began, each
    partition in offset order (partitions interleaved as they arrive). ``on_total`` gets
    the number of records to read, once known."""
    connection = as_connection(kafka)
    consumer = KafkaConsumer(**kafka_python_config(connection), enable_auto_commit=False)
    try:
        assigned = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not assigned:
            raise LookupError(f"topic {topic!r} does not exist at {connection.bootstrap}")
        consumer.assign(assigned)
        starts = consumer.beginning_offsets(assigned)
        ends = consumer.end_offsets(assigned)
        if on_total is not None:
            on_total(sum(ends[tp] - starts[tp] for tp in assigned))
        consumer.seek_to_beginning(*assigned)
        remaining = {tp for tp in assigned if ends[tp] > starts[tp]}
        while remaining:
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=20_000)
            if not batch:
                raise TimeoutError(f"{topic}: nothing to read for {timeout_s} s before its end")
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield TopicRecord(
                            partition=tp.partition,
                            offset=record.offset,
                            timestamp_ms=record.timestamp,
                            key=record.key,
                            value=record.value,
                            headers=[(name, value) for name, value in record.headers],
                        )
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close()


def read_partitions(records: Iterable[TopicRecord]) -> list[list[TopicRecord]]:
    """``records`` split by partition, each in offset order."""
    partitions: dict[int, list[TopicRecord]] = {}
    for record in records:
        partitions.setdefault(record.partition, []).append(record)
    return [partitions[p] for p in sorted(partitions)]


def read_changelogs(
    kafka: KafkaTarget, *, app_id: str, tables: Iterable[str], timeout_s: float = 30.0
) -> dict[str, dict[bytes, JsonState]]:
    """Each table's contents from its changelog topic: the last value of each key (a null
    value deletes it); a table whose changelog was never created is empty."""
    contents: dict[str, dict[bytes, JsonState]] = {}
    for table in tables:
        found: dict[bytes, JsonState | None] = {}
        try:
            records = list(read_to_end(kafka, changelog_topic(app_id, table), timeout_s=timeout_s))
        except LookupError:
            records = []
        for record in records:
            found[record.key or b""] = None if record.value is None else json.loads(record.value)
        contents[table] = {k: v for k, v in found.items() if v is not None}
    return contents


def read_fold_tables(
    kafka: KafkaTarget, *, app_id: str, stages: Topology, timeout_s: float = 30.0
) -> Tables:
    """A worker's fold states by fold name, read from its stage tables' changelogs: what
    :func:`streams.digest.state_digest` compares with a replay."""
    names = [stage.name for stage in stages.stages]
    stored = read_changelogs(kafka, app_id=app_id, tables=names, timeout_s=timeout_s)
    return stored_fold_tables(stored, stages)


def end_offsets(consumer: KafkaConsumer, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics`` (a topic not known yet: none)."""
    partitions = [
        TopicPartition(t, n) for t in topics for n in consumer.partitions_for_topic(t) or ()
    ]
    ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
    return ends


def group_lag(kafka: KafkaTarget, group: str, topics: Iterable[str]) -> int | None:
    """Records of ``topics`` the consumer group has not committed yet; ``None`` while that
    cannot be known (no coordinator for the group yet, a broker error: ask again)."""
    admin = KafkaAdminClient(**kafka_python_config(kafka))
    consumer = KafkaConsumer(**kafka_python_config(kafka))
    try:
        committed = admin.list_group_offsets(group).get(group, {})
        ends = end_offsets(consumer, topics)
        lag: int = sum(
            end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
        )
        return lag
    except KafkaError:
        return None
    finally:
        consumer.close()
        admin.close()

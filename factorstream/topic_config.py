"""Topic configurations the pipeline wants (retention), compared with and set on the broker,
and the oldest record each topic still holds.

``ensure_topics`` creates a missing topic with its configuration but never changes an
existing one; :func:`align_topic_configs` reports where an existing topic's configuration
differs from what the settings want (drift) and, asked to, sets it (an incremental alter:
the topic's other configs stay as they are). Idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from factorstream.localkafka import KafkaUnavailable, admin_client
from verifiers.kafka_connection import KafkaTarget, as_connection, kafka_python_config


@dataclass(frozen=True)
class TopicDrift:
    """One config of one topic that differs from what is wanted (``found`` ``None``: the
    broker's default applies, or the topic does not exist)."""

    topic: str
    config: str
    wanted: str
    found: str | None


def topic_configs(
    kafka: KafkaTarget, topics: Iterable[str], *, timeout: float = 30.0
) -> dict[str, dict[str, str]]:
    """The configs set on each existing topic among ``topics`` (the broker's defaults left
    out); a missing topic is absent."""
    where = as_connection(kafka).describe()
    try:
        with admin_client(kafka, timeout=timeout) as client:
            existing = set(client.list_topics())
            names = [name for name in topics if name in existing]
            if not names:
                return {}
            resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
            described = client.describe_configs(resources)
    except KafkaError as error:
        raise KafkaUnavailable(f"describing topic configs on {where} failed: {error}") from error
    found: dict[str, dict[str, str]] = {name: {} for name in names}
    for name, configs in _topic_entries(described):
        if name in found:
            found[name] = {key: str(entry.get("value")) for key, entry in configs.items()}
    return found


def _topic_entries(described: object) -> Iterable[tuple[str, Mapping[str, dict[str, object]]]]:
    """(topic, {config: entry}) from kafka-python's ``describe_configs`` answer."""
    if isinstance(described, Mapping):
        for kind, resources in described.items():
            if str(kind).upper().endswith("TOPIC") and isinstance(resources, Mapping):
                yield from resources.items()


def drift(
    wanted: Mapping[str, Mapping[str, str]], found: Mapping[str, Mapping[str, str]]
) -> list[TopicDrift]:
    """Each wanted config of an existing topic whose value differs (pure)."""
    return [
        TopicDrift(topic, key, value, found[topic].get(key))
        for topic, configs in sorted(wanted.items())
        if topic in found
        for key, value in sorted(configs.items())
        if found[topic].get(key) != value
    ]


def align_topic_configs(
    kafka: KafkaTarget,
    wanted: Mapping[str, Mapping[str, str]],
    *,
    apply: bool,
    timeout: float = 30.0,
) -> list[TopicDrift]:
    """The drift of the existing topics from ``wanted`` (topic → config → value), set right
    on the broker when ``apply`` (only the configs named; idempotent). Returns the drift
    found before any change."""
    differs = drift(wanted, topic_configs(kafka, wanted, timeout=timeout))
    if not apply or not differs:
        return differs
    changes: dict[str, dict[str, str]] = {}
    for item in differs:
        changes.setdefault(item.topic, {})[item.config] = item.wanted
    where = as_connection(kafka).describe()
    try:
        with admin_client(kafka, timeout=timeout) as client:
            result = client.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, t, configs=c)
                    for t, c in changes.items()
                ],
                raise_on_unknown=False,  # the broker decides (a principal may not describe)
            )
    except (KafkaError, ValueError) as error:
        raise KafkaUnavailable(f"setting topic configs on {where} failed: {error}") from error
    failed = [f"{name}: {error}" for name, error in _errors(result)]
    if failed:
        raise KafkaUnavailable(f"setting topic configs on {where} failed: {'; '.join(failed)}")
    return differs


def _errors(result: object) -> Iterable[tuple[str, object]]:
    """The resources kafka-python's ``alter_configs`` answer reports an error for (it
    answers ``'OK'`` or the error's text, per resource type and name)."""
    if isinstance(result, Mapping):
        for resources in result.values():
            if isinstance(resources, Mapping):
                for name, outcome in resources.items():
                    if outcome != "OK":
                        yield name, outcome


def oldest_record_times(
    kafka: KafkaTarget, topics: Iterable[str], *, timeout: float = 10.0
) -> dict[str, datetime | None]:
    """The timestamp of the oldest record each topic still holds (``None``: empty or
    missing), read from the first record of each partition."""
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(kafka),
            enable_auto_commit=False,
            group_id=None,
            bootstrap_timeout_ms=int(timeout * 1000),
            consumer_timeout_ms=int(timeout * 1000),
            request_timeout_ms=max(int(timeout * 1000) + 1000, 11_000),
        )
    except KafkaError as error:
        where = as_connection(kafka).describe()
        raise KafkaUnavailable(f"no Kafka broker answers at {where}: {error}") from error
    try:
        oldest: dict[str, datetime | None] = {}
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            oldest[topic] = _oldest(consumer, assigned, timeout=timeout) if assigned else None
        return oldest
    except KafkaError as error:
        where = as_connection(kafka).describe()
        raise KafkaUnavailable(f"reading topics on {where} failed: {error}") from error
    finally:
        consumer.close()


def _oldest(
    consumer: KafkaConsumer, assigned: list[TopicPartition], *, timeout: float
) -> datetime | None:
    starts = consumer.beginning_offsets(assigned)
    ends = consumer.end_offsets(assigned)
    holding = [tp for tp in assigned if ends[tp] > starts[tp]]
    if not holding:
        return None
    consumer.assign(holding)
    for tp in holding:
        consumer.seek(tp, starts[tp])
    first: dict[TopicPartition, int] = {}
    deadline = datetime.now(UTC).timestamp() + timeout
    while len(first) < len(holding) and datetime.now(UTC).timestamp() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            if tp not in first and records:
                first[tp] = records[0].timestamp
                consumer.pause(tp)
    if not first:
        return None
    return datetime.fromtimestamp(min(first.values()) / 1000, UTC)

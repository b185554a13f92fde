"""A producer cannot date its record: the events topic keeps the broker's append time, and
ingest measures each event's own time against it (``stream.max_ahead_s``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from factorstream.localkafka import ensure_pipeline_topics
from factorstream.settings import Settings, TopicSettings
from schemas import encode, kafka_key
from schemas.codec import structured_headers
from streams.stages import DLQ, INGESTED, Ingest, Record
from tests.factories import sample_event
from tests.kafka_broker import KafkaBroker

LOG_APPEND_TIME = 1
"""Kafka's timestamp type of a record the broker stamped."""


def test_a_forged_record_time_is_replaced_by_the_brokers_and_the_future_event_refused(
    kafka_broker: KafkaBroker,
) -> None:
    unique = uuid.uuid4().hex[:10]
    names = TopicSettings.under(f"test.future.{unique}")
    ensure_pipeline_topics(kafka_broker.bootstrap, names)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, names.events)]
        )  # {resource type: {name: {config: {"value": …}}}}, modified configs only
        (by_name,) = described.values()
        configs = {key: data["value"] for key, data in by_name[names.events].items()}
        assert configs["message.timestamp.type"] == "LogAppendTime"
    finally:
        admin.close()

    now = datetime.now(UTC)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    erasure = sample_event("privacy.subject.erased", subject="u-1", now=future)
    honest = sample_event("auth.login.attempted", subject="u-1", now=now - timedelta(seconds=1))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    far = int(future.timestamp() * 1000)
    for event in (erasure, honest):  # the attacker also dates the record itself in 2099
        producer.send(
            names.events,
            key=kafka_key(event),
            value=encode(event),
            headers=structured_headers(),
            partition=0,
            timestamp_ms=far,
        )
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(names.events, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        read: list[object] = []
        deadline = time.monotonic() + 30
        while len(read) < 2 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                read.extend(batch)
    finally:
        consumer.close()
    assert len(read) == 2
    records = []
    for message in read:
        assert message.timestamp_type == LOG_APPEND_TIME  # type: ignore[attr-defined]
        assert abs(message.timestamp / 1000 - now.timestamp()) < 120  # type: ignore[attr-defined]
        records.append(
            Record(
                names.events,
                message.partition,  # type: ignore[attr-defined]
                message.offset,  # type: ignore[attr-defined]
                message.timestamp,  # type: ignore[attr-defined]
                message.key,  # type: ignore[attr-defined]
                message.value,  # type: ignore[attr-defined]
                list(message.headers),  # type: ignore[attr-defined]
            )
        )
    allowance = timedelta(seconds=Settings().stream.max_ahead_s)
    out = Ingest(max_ahead=allowance).process(records)
    assert [e.role for e in out.emits] == [DLQ, INGESTED]

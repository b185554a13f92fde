"""An independent Kafka client (kcat, librdkafka) writes events we decode and reads ours."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from schemas import decode, encode
from tests.factories import sample_event
from tests.integration.conftest import sqlite_outbox
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker
from tests.support import missing
from verifiers.publish import OutboxRelay, kafka_producer_factory


@pytest.fixture(scope="module")
def kcat() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        missing("kcat", "not on PATH (apt-get install kcat)")
    return path


HAND_WRITTEN = {
    "specversion": "1.0",
    "id": "0193f1a0-7b1c-7d2e-9f00-1234567890ab",
    "source": "https://legacy-idp.example.org",
    "type": "mfa.verification.failed",
    "time": "2026-11-27T08:15:30.250+01:00",
    "subject": "u-77",
    "datacontenttype": "application/json",
    "dataschema": "urn:factorstream:schema:mfa.verification.failed:v1",
    "tenant": "globex",
    "partitionkey": "globex/u-77",
    "correlationid": "tx-9",
    "data": {
        "factor": "sms",
        "reason": "expired",
        "attempt": 2,
        "client": {"ip": "2001:db8::7", "geo": {"country": "FR"}},
    },
}


def _kcat_produce(
    kcat: str, bootstrap: str, topic: str, *, key: str, value: str, headers: dict[str, str]
) -> None:
    """Produce one record with kcat (librdkafka), independently of our code."""
    header_args = [arg for name, text in headers.items() for arg in ("-H", f"{name}={text}")]
    subprocess.run(
        [kcat, "-b", bootstrap, "-t", topic, "-P", "-K", "\t", *header_args],
        input=f"{key}\t{value}\n".encode(),
        check=True,
        timeout=30,
    )


def test_kcat_structured_event_decodes_with_our_codec(
    kcat: str, kafka_broker: KafkaBroker, topic: str
) -> None:
    _kcat_produce(
        kcat,
        kafka_broker.bootstrap,
        topic,
        key="globex/u-77",
        value=json.dumps(HAND_WRITTEN),
        headers={"content-type": "application/cloudevents+json"},
    )
    (record,) = consume(kafka_broker.bootstrap, topic, at_least=1)
    event = record.event()
    assert record.key == b"globex/u-77"
    assert (event.type, event.tenant, event.subject) == (
        "mfa.verification.failed",
        "globex",
        "u-77",
    )
    assert event.time.isoformat() == "2026-11-27T07:15:30.250000+00:00"
    client = event.data.client  # type: ignore[attr-defined]
    assert client is not None and client.ip == "2001:db8::7"


def test_kcat_binary_mode_event_decodes_with_our_codec(
    kcat: str, kafka_broker: KafkaBroker, topic: str
) -> None:
    attributes = {k: v for k, v in HAND_WRITTEN.items() if k not in ("data", "datacontenttype")}
    headers = {f"ce_{name}": str(value) for name, value in attributes.items()}
    _kcat_produce(
        kcat,
        kafka_broker.bootstrap,
        topic,
        key="globex/u-77",
        value=json.dumps(HAND_WRITTEN["data"]),
        headers={"content-type": "application/json", **headers},
    )
    (record,) = consume(kafka_broker.bootstrap, topic, at_least=1)
    assert record.event() == decode(json.dumps(HAND_WRITTEN))


def test_kcat_consumes_and_prints_what_the_relay_published(
    kcat: str, kafka_broker: KafkaBroker, topic: str, tmp_path: Path
) -> None:
    events = [
        sample_event(name) for name in ("mfa.challenge.sent", "mfa.push.approved", "risk.detected")
    ]
    outbox = sqlite_outbox(tmp_path / "service.db")
    with outbox.engine.begin() as connection:
        outbox.add(connection, events)
    OutboxRelay(
        outbox, topic=topic, producer_factory=kafka_producer_factory(kafka_broker.bootstrap)
    ).drain(timeout_s=60)
    printed = subprocess.run(
        [
            kcat,
            "-b",
            kafka_broker.bootstrap,
            "-t",
            topic,
            "-C",
            "-e",
            "-q",
            "-o",
            "beginning",
            "-f",
            "%k\t%h\t%s\n",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    lines = [line.split("\t") for line in printed.splitlines() if line]
    assert len(lines) == len(events)
    by_id = {event.id: event for event in events}
    for key, headers, value in lines:
        event = by_id[json.loads(value)["id"]]
        assert key == event.partitionkey
        assert headers == "content-type=application/cloudevents+json"
        assert value.encode() == encode(event)
        assert decode(value) == event

"""Ingest in Faust's test_context (memory store): dead letters, duplicates, forwarding."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from faust.types import TopicT

from factorstream.settings import Settings, StreamSettings
from schemas import MAX_EVENT_BYTES, decode, encode, encode_binary, kafka_key
from schemas.codec import structured_headers
from streams.app import Pipeline, create_pipeline
from streams.consumer import InOrderConsumer
from streams.ingest import DLQ_VALUE_LIMIT, IngestOutcome
from streams.positions import Position, position_of
from tests.factories import sample_event


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    stream = StreamSettings(store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}")
    return create_pipeline(Settings(data_dir=tmp_path, stream=stream))


@pytest.fixture
def sent(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Sent]]:
    """What the agents sent, by topic name (the producer is never started here)."""
    records: dict[str, list[Sent]] = defaultdict(list)

    def recorder(topic: TopicT) -> Any:
        async def send(
            *, key: bytes | None, value: bytes | None, headers: Any = None, **_: Any
        ) -> None:
            records[topic.get_topic_name()].append(Sent(key, value, list(headers or [])))

        return send

    for topic in (pipeline.dlq, pipeline.ingested, pipeline.lockouts, pipeline.anomalies):
        monkeypatch.setattr(topic, "send", recorder(topic))
    return records


def _headers(letter: Sent) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in letter.headers if k.startswith("factorstream.dlq.")}


async def _put(pipeline: Pipeline, records: list[tuple[bytes | None, bytes | None, Any]]) -> list:
    """Put raw records through the ingest agent; returns what it yielded, in order."""
    async with pipeline.agents["ingest"].test_context() as agent:
        for key, value, headers in records:
            await agent.put(value, key=key, headers=headers)
        return [agent.results[i] for i in range(len(records))]


def _junk(name: str) -> bytes | None:
    good = msgspec.json.decode(encode(sample_event()))
    if name == "not json":
        return b"\x00\xffnot json at all"
    if name == "tombstone":
        return None
    if name == "unknown type":
        return json.dumps({**good, "type": "mfa.nonsense.happened"}).encode()
    if name == "wrong schema":
        return json.dumps({**good, "data": {**good["data"], "factor": "carrier-pigeon"}}).encode()
    assert name == "huge"
    return json.dumps({**good, "padding": "x" * (MAX_EVENT_BYTES + 10)}).encode()


@pytest.mark.parametrize(
    ("name", "field", "says"),
    [
        ("not json", "event", "not valid JSON"),
        ("tombstone", "event", "no value"),
        ("unknown type", "type", "unknown event type 'mfa.nonsense.happened'"),
        ("wrong schema", "data.factor", "carrier-pigeon"),
        ("huge", "event", f"exceeds {MAX_EVENT_BYTES}"),
    ],
)
async def test_bad_records_go_to_the_dlq_with_reason_and_original_bytes(
    pipeline: Pipeline, sent: dict[str, list[Sent]], name: str, field: str, says: str
) -> None:
    value = _junk(name)
    original_headers = [("origin", b"kcat"), ("content-type", b"application/cloudevents+json")]
    outcomes = await _put(pipeline, [(b"acme/u-1", value, original_headers)])

    assert outcomes == [IngestOutcome.DEAD_LETTERED]
    (letter,) = sent[pipeline.dlq.get_topic_name()]
    assert (letter.key, letter.value) == (b"acme/u-1", value)
    assert letter.headers[:2] == original_headers  # the original headers come first, unchanged
    meta = _headers(letter)
    assert meta["factorstream.dlq.field"] == field
    assert meta["factorstream.dlq.reason"].startswith(f"{field}: ")
    assert says in meta["factorstream.dlq.reason"]
    assert meta["factorstream.dlq.topic"] == pipeline.events.get_topic_name()
    assert (meta["factorstream.dlq.partition"], meta["factorstream.dlq.offset"]) == ("0", "0")
    assert int(meta["factorstream.dlq.timestamp"]) > 0
    assert meta["factorstream.dlq.value.length"] == str(-1 if value is None else len(value))
    assert "factorstream.dlq.value.truncated" not in meta
    assert not sent[pipeline.ingested.get_topic_name()]


async def test_a_value_beyond_the_dlq_limit_is_cut_and_says_so(
    pipeline: Pipeline, sent: dict[str, list[Sent]]
) -> None:
    value = b"{" * (DLQ_VALUE_LIMIT + 1000)
    await _put(pipeline, [(None, value, None)])

    (letter,) = sent[pipeline.dlq.get_topic_name()]
    assert letter.key is None
    assert letter.value == value[:DLQ_VALUE_LIMIT]
    meta = _headers(letter)
    assert meta["factorstream.dlq.value.length"] == str(len(value))
    assert meta["factorstream.dlq.value.truncated"] == "true"


async def test_good_events_are_forwarded_keyed_by_partitionkey_and_the_worker_goes_on(
    pipeline: Pipeline, sent: dict[str, list[Sent]]
) -> None:
    first, second = sample_event(subject="u-1"), sample_event(subject="u-2")
    binary_headers, binary_value = encode_binary(second)
    outcomes = await _put(
        pipeline,
        [
            (b"wrong-key", encode(first), structured_headers()),
            (b"junk", b"][", None),
            (kafka_key(second), binary_value, binary_headers),  # binary mode is accepted too
        ],
    )

    assert outcomes == [
        IngestOutcome.FORWARDED,
        IngestOutcome.DEAD_LETTERED,
        IngestOutcome.FORWARDED,
    ]
    forwarded = sent[pipeline.ingested.get_topic_name()]
    assert [f.key for f in forwarded] == [b"acme/u-1", b"acme/u-2"]  # re-keyed by partitionkey
    assert [decode(f.value or b"") for f in forwarded] == [first, second]
    assert all(f.headers[:1] == structured_headers() for f in forwarded)  # re-encoded
    # each stamped with its place in the events topic, for the folds' idempotence
    origins = [position_of(f.headers, via=False) for f in forwarded]
    assert [len(f.headers) for f in forwarded] == [2, 2]
    assert origins[0] is not None and origins[1] is not None
    assert origins[0].channel == origins[1].channel and origins[0].offset + 2 == origins[1].offset


async def test_duplicates_by_event_id_are_dropped(
    pipeline: Pipeline, sent: dict[str, list[Sent]]
) -> None:
    event, other = sample_event(), sample_event()
    records = [(kafka_key(e), encode(e), structured_headers()) for e in (event, other, event)]
    binary_headers, binary_value = encode_binary(event)  # same id, other wire form
    outcomes = await _put(pipeline, [*records, (kafka_key(event), binary_value, binary_headers)])

    assert outcomes == [
        IngestOutcome.FORWARDED,
        IngestOutcome.FORWARDED,
        IngestOutcome.DUPLICATE,
        IngestOutcome.DUPLICATE,
    ]
    forwarded = sent[pipeline.ingested.get_topic_name()]
    assert [decode(f.value or b"").id for f in forwarded] == [event.id, other.id]


async def test_the_same_record_read_again_after_a_crash_is_no_duplicate(
    pipeline: Pipeline, sent: dict[str, list[Sent]]
) -> None:
    """A restart re-reads records after the last commit; their forwards (held by Faust
    until that commit) may be lost, so the first record of an id must pass again."""
    event = sample_event()
    record = (kafka_key(event), encode(event), structured_headers())
    async with pipeline.agents["ingest"].test_context() as agent:
        outcomes = []
        for offset in (7, 7, 8):  # the record, read again at its offset, then a re-send
            agent.sent_offset = offset
            await agent.put(record[1], key=record[0], headers=record[2])
            outcomes.append(agent.results[len(outcomes)])
    assert outcomes == [
        IngestOutcome.FORWARDED,
        IngestOutcome.FORWARDED,
        IngestOutcome.DUPLICATE,
    ]
    forwarded = sent[pipeline.ingested.get_topic_name()]
    assert [position_of(f.headers, via=False) for f in forwarded] == [Position("0", 7)] * 2


def test_fold_names_must_be_unique(tmp_path: Path) -> None:
    from streams.lockout_agent import KeyedFold

    def step(state: Any, event: Any) -> tuple[Any, list[Any]]:
        return state, []

    settings = Settings(data_dir=tmp_path, stream=StreamSettings(store="memory://"))
    with pytest.raises(ValueError, match="unique"):
        create_pipeline(settings, detections=[KeyedFold("lockout", step, "anomalies")])


def test_internal_topics_are_listed_with_fausts_configs(pipeline: Pipeline) -> None:
    """The worker creates these before Faust starts (see ``internal_topics``)."""
    from streams.app import internal_topics

    app_id = pipeline.app.conf.id
    specs = internal_topics(pipeline)
    detections = {"risk_by_subject", "risk_by_ip", "risk_by_tenant", "ip_block"}
    assert set(specs) == {
        f"{app_id}-events-ingested",
        f"{app_id}-events-by-ip",
        f"{app_id}-events-by-tenant",
        f"{app_id}-ingest-seen-changelog",
        f"{app_id}-lockout-changelog",
        *(f"{app_id}-{name}-changelog" for name in detections),
    }
    assert {spec.partitions for spec in specs.values()} == {6}
    assert specs[f"{app_id}-lockout-changelog"].configs == {"cleanup.policy": "compact"}
    seen = specs[f"{app_id}-ingest-seen-changelog"].configs
    assert seen == {"cleanup.policy": "compact,delete", "retention.ms": "3600000"}


def test_the_worker_reads_through_the_in_order_consumer_unless_told_not_to(
    tmp_path: Path,
) -> None:
    """Faust's own consumer can commit past records it never delivered
    (tests/integration/test_inorder_delivery.py): the worker's is the default."""
    stream = StreamSettings(store="memory://", app_id="wiring-inorder")
    app = create_pipeline(Settings(data_dir=tmp_path, stream=stream)).app
    assert app.transport.Consumer is InOrderConsumer
    assert isinstance(app.consumer, InOrderConsumer)
    plain = stream.model_copy(update={"app_id": "wiring-plain", "in_order_delivery": False})
    app = create_pipeline(Settings(data_dir=tmp_path / "plain", stream=plain)).app
    assert not isinstance(app.consumer, InOrderConsumer)

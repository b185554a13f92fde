"""The worker's ingest stage over events the official CloudEvents SDK made with extension
attributes of their sender: kept and forwarded, not dead-lettered; an extension outside
the bounds still is, with the reason."""

from __future__ import annotations

import json

from audit import canonical
from schemas import decode, encode
from streams.stages import DLQ, INGESTED, Ingest, Record
from tests.cloudevents_sdk import kafka_binary, kafka_structured, sdk_event
from tests.factories import sample_event

TOPIC = "mfa.events"


def record(headers: list[tuple[str, bytes]], value: bytes, offset: int) -> Record:
    return Record(TOPIC, 0, offset, 1_793_611_800_123, None, value, headers)


def test_the_ingest_stage_forwards_sdk_events_with_their_extensions() -> None:
    first, second = sample_event(subject="u-1"), sample_event(subject="u-2")
    records = [
        record(*kafka_structured(sdk_event(first, comexampleorder="o-1", sequence=3)), 0),
        record(*kafka_binary(sdk_event(second, comexampleorder="o-2")), 1),
    ]

    out = Ingest().process(records)

    assert [emit.role for emit in out.emits] == [INGESTED, INGESTED]
    forwarded = [decode(emit.value or b"", emit.headers) for emit in out.emits]
    assert [e.extensions for e in forwarded] == [
        {"comexampleorder": "o-1", "sequence": 3},
        {"comexampleorder": "o-2"},
    ]
    assert [e.id for e in forwarded] == [first.id, second.id]


def test_an_extension_out_of_bounds_is_dead_lettered_with_the_reason() -> None:
    document = json.loads(encode(sample_event()))
    document["comexamplegeo"] = {"lat": 1.0}
    out = Ingest().process([record([], json.dumps(document).encode(), 0)])
    (letter,) = out.emits
    assert letter.role == DLQ and out.dead_lettered == 1
    assert any(b"comexamplegeo" in (value or b"") for _, value in letter.headers)


def test_the_ledger_entry_holds_the_extensions_as_one_object_member() -> None:
    document = json.loads(encode(sample_event("mfa.verification.succeeded")))
    document["comexampleorder"] = "o-1"
    event = decode(json.dumps(document))
    without, personal = canonical.split_personal(event)
    entry = canonical.encode_entry(
        without,
        seq=0,
        prev=canonical.GENESIS,
        recorded_at="2026-11-02T09:30:00.000000Z",
        key_id="k" if personal else None,
        seal=(lambda plain, context: plain) if personal else None,
        personal=personal,
    )
    assert json.loads(entry)["event"]["extensions"] == {"comexampleorder": "o-1"}

"""The codec: round trips, binary mode, and every kind of bad input named by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from schemas import EVENT_TYPES, MAX_EVENT_BYTES, EventDecodeError, decode, encode, encode_binary
from schemas.codec import kafka_key
from schemas.envelope import uuid7
from tests.factories import PAYLOADS, sample_event


def test_every_registered_type_has_a_sample() -> None:
    assert set(PAYLOADS) == {kind.name for kind in EVENT_TYPES}


@pytest.mark.parametrize("type_name", sorted(PAYLOADS))
def test_structured_round_trip(type_name: str) -> None:
    event = sample_event(type_name)
    value = encode(event)
    assert json.loads(value)["type"] == type_name
    assert decode(value) == event
    assert kafka_key(event) == b"acme/u-1001"


@pytest.mark.parametrize("type_name", sorted(PAYLOADS))
def test_binary_mode_round_trip(type_name: str) -> None:
    event = sample_event(type_name, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    headers, value = encode_binary(event)
    assert ("ce_type", type_name.encode()) in headers
    assert decode(value, headers) == event


def test_structured_content_type_header_means_the_value_is_the_whole_event() -> None:
    event = sample_event()
    headers = [("content-type", b"application/cloudevents+json; charset=utf-8")]
    assert decode(encode(event), headers) == event


def test_time_with_an_offset_is_normalised_to_utc() -> None:
    event = sample_event()
    document = json.loads(encode(event))
    document["time"] = "2026-11-02T11:30:00+02:00"
    decoded = decode(json.dumps(document))
    assert decoded.time == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert decoded.time.utcoffset() == timedelta(0)


def test_naive_now_is_refused_when_creating_an_event() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample_event(now=datetime(2026, 11, 2, 9, 30))  # noqa: DTZ001


def test_uuid7_layout_and_ordering() -> None:
    earlier = uuid7(datetime(2026, 1, 1, tzinfo=UTC))
    later = uuid7(datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC))
    parsed = UUID(earlier)
    assert parsed.version == 7
    assert parsed.variant == "specified in RFC 4122"
    assert (parsed.int >> 80) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert earlier < later
    assert uuid7(datetime(2026, 1, 1, tzinfo=UTC)) != earlier


def _mutated(**changes: object) -> bytes:
    document = json.loads(encode(sample_event()))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = document
        for name in parents:
            node = node[name]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return json.dumps(document).encode()


_DELETE = object()
VALID = encode(sample_event())

BAD_INPUTS = {
    "truncated JSON": (VALID[: len(VALID) // 2], "event", "not valid JSON"),
    "binary garbage": (bytes(range(256)), "event", "not valid JSON"),
    "empty value": (b"", "event", "not valid JSON"),
    "JSON array": (b"[1, 2]", "event", "Expected `object`"),
    "oversized value": (b" " * (MAX_EVENT_BYTES + 1), "event", "exceeds"),
    "wrong specversion": (_mutated(specversion="0.3"), "specversion", "Invalid enum value"),
    "missing id": (_mutated(id=_DELETE), "id", "missing required field"),
    "id not a UUID": (_mutated(id="42"), "id", "Expected `str` of length >= 36"),
    "id upper-case": (_mutated(id="0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"), "id", "does not match"),
    "subject with a space": (_mutated(subject="Jane Doe"), "subject", "does not match"),
    "missing tenant": (_mutated(tenant=_DELETE), "tenant", "missing required field"),
    "subject wrong type": (_mutated(subject=17), "subject", "Expected `str`, got `int`"),
    "naive time": (_mutated(time="2026-11-02T09:30:00"), "time", "timezone"),
    "time not a time": (_mutated(time="yesterday"), "time", "Invalid RFC3339"),
    "unknown type": (_mutated(type="mfa.teleport.succeeded"), "type", "unknown event type"),
    "dataschema of another type": (
        _mutated(dataschema="urn:factorstream:schema:mfa.verification.succeeded:v1"),
        "dataschema",
        "expected a schema of 'mfa.verification.failed'",
    ),
    "partitionkey mismatch": (_mutated(partitionkey="acme/u-9"), "partitionkey", "tenant/subject"),
    "attribute not named as an extension": (
        _mutated(Colour="red"),
        "Colour",
        "is not an attribute of the contract",
    ),
    "extension with an object value": (_mutated(colour={"r": 1}), "colour", "not dict"),
    "binary data": (_mutated(data_base64="AAAA"), "data_base64", "binary data"),
    "misspelt required attribute": (
        _mutated(tenant=_DELETE, tennant="acme"),
        "tenant",
        "missing required field",
    ),
    "data missing": (_mutated(data=_DELETE), "data", "missing required field"),
    "data wrong type": (_mutated(data=[1]), "data", "Expected `object`"),
    "payload missing reason": (_mutated(data__reason=_DELETE), "data.reason", "missing required"),
    "payload unknown enum": (
        _mutated(data__factor="carrier_pigeon"),
        "data.factor",
        "Invalid enum",
    ),
    "payload wrong type": (_mutated(data__attempt="two"), "data.attempt", "Expected `int`"),
    "payload unknown field": (_mutated(data__pin="1234"), "data.pin", "unknown field"),
    "nested bad ip": (_mutated(data__client__ip="300.1.2.3"), "data.client.ip", "IPv4 or IPv6"),
    "nested geo out of range": (
        _mutated(data__client__geo__latitude=123.0),
        "data.client.geo.latitude",
        "<= 90",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_the_typed_error_naming_the_field(case: str) -> None:
    value, field, reason = BAD_INPUTS[case]
    with pytest.raises(EventDecodeError) as raised:
        decode(value)
    assert raised.value.field == field
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"{field}: ")


def test_binary_mode_errors_name_the_header_attribute() -> None:
    headers, value = encode_binary(sample_event())
    broken = [(k, b"not-a-uuid" if k == "ce_id" else v) for k, v in headers]
    with pytest.raises(EventDecodeError) as raised:
        decode(value, broken)
    assert raised.value.field == "id"
    with pytest.raises(EventDecodeError) as raised:
        decode(b"{nope", headers)
    assert raised.value.field == "data"
    with pytest.raises(EventDecodeError) as raised:
        decode(value, [*headers, ("ce_tenant", b"\xff\xfe")])
    assert raised.value.field == "tenant"


def test_encoding_leaves_defaults_off_the_wire() -> None:
    document = msgspec.json.decode(encode(sample_event("mfa.push.expired")))
    assert "traceparent" not in document
    assert document["data"] == {"challenge_id": "ch-1", "expired_after_ms": 60000}

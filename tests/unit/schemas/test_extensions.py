"""Extension attributes the contract does not know are kept, within bounds (schemas/codec.py),
tested with events the official CloudEvents SDK made, in each mode."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EventDecodeError, decode, encode, encode_binary
from schemas.envelope import MAX_EXTENSIONS
from schemas.signing import check_signature
from tests.cloudevents_sdk import kafka_binary, kafka_structured, sdk_event
from tests.factories import TRUSTED, sample_event

EXTENSIONS = {"comexampleorder": "o-77", "sequence": 42, "sampled": True, "dataref": "s3://b/k"}


def test_the_sdks_structured_event_keeps_its_extensions_through_a_worker_round_trip() -> None:
    original = sample_event()
    headers, value = kafka_structured(sdk_event(original, **EXTENSIONS))

    event = decode(value, headers)

    assert event.extensions == EXTENSIONS
    assert event.data == original.data and event.id == original.id
    again = decode(encode(event))  # what the worker writes to its ingested topic
    assert again == event
    assert json.loads(encode(event))["comexampleorder"] == "o-77"  # a member, not nested


def test_the_sdks_binary_event_keeps_its_extensions_as_strings() -> None:
    headers, value = kafka_binary(sdk_event(sample_event(), **EXTENSIONS))

    event = decode(value, headers)

    # a header has no types: every value arrives as a string (the SDK writes Python's
    # str(True), not CloudEvents' canonical "true"; we keep what was sent)
    assert event.extensions == {
        "comexampleorder": "o-77",
        "sequence": "42",
        "sampled": "True",
        "dataref": "s3://b/k",
    }
    back_headers, back_value = encode_binary(event)
    assert ("ce_sequence", b"42") in back_headers
    assert decode(back_value, back_headers) == event


def test_an_event_without_extensions_encodes_as_before() -> None:
    event = sample_event()
    assert event.extensions is None
    assert b"extensions" not in encode(event)


def test_a_null_extension_is_absent() -> None:
    document = json.loads(encode(sample_event()))
    document["sampled"] = None
    assert decode(json.dumps(document)).extensions is None


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"ComExample": "x"}, "ComExample", "is not an attribute of the contract"),
        ({"a" * 21: "x"}, "a" * 21, "is not an attribute of the contract"),
        ({"extensions": {"a": "b"}}, "extensions", "not 'extensions'"),
        ({"extensions": "x"}, "extensions", "not 'extensions'"),
        ({"data_base64": "AAAA"}, "data_base64", "binary data is not accepted"),
        ({"geo": {"lat": 1}}, "geo", "not dict"),
        ({"tags": ["a"]}, "tags", "not list"),
        ({"ratio": 0.5}, "ratio", "not float"),
        ({"big": 2**31}, "big", "outside CloudEvents' 32-bit range"),
        ({"long": "x" * 257}, "long", "exceeds 256"),
        ({f"e{i}": i for i in range(MAX_EXTENSIONS + 1)}, "event", "at most 16"),
    ],
)
def test_what_is_not_a_bounded_extension_is_refused(
    extra: dict[str, object], field: str, reason: str
) -> None:
    document = json.loads(encode(sample_event()))
    document.update(extra)
    with pytest.raises(EventDecodeError) as refused:
        decode(json.dumps(document))
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_sixteen_extensions_of_the_largest_size_are_kept() -> None:
    document = json.loads(encode(sample_event()))
    document.update({f"e{i:019d}": "x" * 256 for i in range(MAX_EXTENSIONS)})
    assert len(decode(json.dumps(document)).extensions or {}) == MAX_EXTENSIONS


def test_a_signed_control_event_covers_its_extensions() -> None:
    signed = sample_event("privacy.subject.erased")
    document = json.loads(encode(signed))
    document["comexampleticket"] = "T-1"
    with pytest.raises(EventDecodeError, match="altered after signing, or forged"):
        check_signature(decode(json.dumps(document)), TRUSTED)


def test_invalid_json_after_an_unknown_member_is_a_decode_error() -> None:
    document = encode(sample_event())[:-1] + b',"":Infinity}'
    with pytest.raises(EventDecodeError) as refused:
        decode(document)
    assert refused.value.field == "event" and "not valid JSON" in refused.value.reason


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(
    members=st.dictionaries(
        st.from_regex(r"[a-z0-9]{1,22}", fullmatch=True) | st.text(max_size=22),
        JSON_VALUES,
        max_size=20,
    )
)
def test_any_added_members_decode_and_round_trip_or_are_refused_by_name(
    members: dict[str, object],
) -> None:
    document = json.loads(encode(sample_event()))
    document.update({k: v for k, v in members.items() if k not in document})
    try:
        event = decode(json.dumps(document))
    except EventDecodeError as refused:
        assert refused.field and refused.reason
        return
    assert decode(encode(event)) == event
    headers, value = encode_binary(event)
    assert decode(value, headers).id == event.id

"""Fuzzing the decoder: whatever arrives, the only error is EventDecodeError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import CloudEvent, EventDecodeError, decode, encode, encode_binary
from tests.factories import PAYLOADS, sample_event

SAMPLES = [encode(sample_event(name)) for name in sorted(PAYLOADS)]
DOCUMENTS = [json.loads(value) for value in SAMPLES]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_typed_error(value: bytes | str, headers: Any = None) -> None:
    try:
        event = decode(value, headers)
    except EventDecodeError as error:
        assert error.field
        assert error.reason
        return
    assert isinstance(event, CloudEvent)
    assert decode(encode(event)) == event  # what we accept, we can also write back


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [at] if at else []
    if isinstance(node, dict):
        for key, child in node.items():
            paths += _paths(child, (*at, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            paths += _paths(child, (*at, index))
    return paths


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(value: bytes) -> None:
    _decode_or_typed_error(value)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_byte_level_mutations(value: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(value) - 1))
    action = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    mutated = bytearray(value)
    if action == "flip":
        mutated[position] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        del mutated[position:]
    elif action == "insert":
        mutated[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        del mutated[position]
    _decode_or_typed_error(bytes(mutated))


@FUZZ
@given(st.sampled_from(range(len(DOCUMENTS))), st.data())
def test_structural_mutations(index: int, data: st.DataObject) -> None:
    document = json.loads(json.dumps(DOCUMENTS[index]))
    path = data.draw(st.sampled_from(_paths(document)))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or isinstance(parent, list):
        parent[path[-1]] = data.draw(json_values)
    elif action == "delete":
        del parent[path[-1]]
    else:
        parent[data.draw(st.text(max_size=12))] = data.draw(json_values)
    _decode_or_typed_error(json.dumps(document))


@FUZZ
@given(st.sampled_from(sorted(PAYLOADS)), st.data())
def test_binary_mode_header_mutations(type_name: str, data: st.DataObject) -> None:
    headers, value = encode_binary(sample_event(type_name))
    index = data.draw(st.integers(0, len(headers) - 1))
    name, _ = headers[index]
    headers[index] = (name, data.draw(st.none() | st.binary(max_size=40)))
    if data.draw(st.booleans()):
        headers.append(
            (
                data.draw(st.sampled_from(["ce_", "ce_x", "content-type"])),
                data.draw(st.binary(max_size=20)),
            )
        )
    _decode_or_typed_error(value, headers)

"""The codec benchmark's baseline must enforce the same contract as the codec itself."""

from __future__ import annotations

import json

import pytest

from factorstream.bench.codec import stdlib_decode
from factorstream.bench.events import synthetic_events
from schemas import encode
from tests.factories import PAYLOADS, sample_event
from tests.unit.schemas.test_codec import BAD_INPUTS


@pytest.mark.parametrize("type_name", sorted(PAYLOADS))
def test_baseline_accepts_every_valid_event(type_name: str) -> None:
    assert stdlib_decode(encode(sample_event(type_name)))["type"] == type_name


def test_baseline_accepts_the_benchmark_events() -> None:
    for event in synthetic_events(200):
        stdlib_decode(encode(event))


@pytest.mark.parametrize(
    "case",
    sorted(set(BAD_INPUTS) - {"oversized value"}),  # a size cap is not a dict check
)
def test_baseline_refuses_what_the_codec_refuses(case: str) -> None:
    value, _, _ = BAD_INPUTS[case]
    with pytest.raises((ValueError, KeyError, TypeError, json.JSONDecodeError)):
        stdlib_decode(value)

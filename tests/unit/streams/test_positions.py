"""Table values remember the positions they applied (streams/positions.py)."""

from __future__ import annotations

from streams.positions import (
    Position,
    after,
    applied,
    fold_state,
    origin_header,
    origin_of,
    position_of,
    via_header,
)


def test_the_origin_header_gives_the_partition_as_channel() -> None:
    assert position_of([origin_header(3, 41)], via=False) == Position("3", 41)
    assert position_of([("content-type", b"x")], via=False) is None


def test_re_keyed_channels_name_the_ingested_partition_too() -> None:
    headers = [origin_header(3, 41), via_header(5)]
    assert position_of(headers, via=True) == Position("5:3", 41)
    assert position_of(headers, via=False) == Position("3", 41)
    assert origin_of([("content-type", b"x"), *headers]) == [origin_header(3, 41)]


def test_an_event_at_or_below_the_remembered_offset_was_applied() -> None:
    value = after(None, {"failures": 1}, Position("0", 10))
    assert value == {"state": {"failures": 1}, "applied": {"0": 10}}
    assert applied(value, Position("0", 10)) and applied(value, Position("0", 9))
    assert not applied(value, Position("0", 11))
    assert not applied(value, Position("1", 0))  # another channel has its own offsets
    assert not applied(value, None)  # no position: always applied (not from ingest)


def test_positions_survive_a_reset_state_and_other_channels_are_kept() -> None:
    value = after(None, {"n": 1}, Position("0", 10))
    value = after(value, {"n": 2}, Position("1", 3))
    reset = after(value, None, Position("0", 12))
    assert reset == {"state": None, "applied": {"0": 12, "1": 3}}
    assert fold_state(reset) is None and fold_state(value) == {"n": 2}
    assert after(None, None, None) is None  # nothing to keep: the key is deleted

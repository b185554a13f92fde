"""Positions: where an event sits on its channel, from its record headers (streams/positions.py).

How the stages use them (skip what a key applied already) is tested in test_stages.py.
"""

from __future__ import annotations

from streams.positions import Position, origin_header, origin_of, position_of, via_header


def test_the_origin_header_gives_the_partition_as_channel() -> None:
    assert position_of([origin_header(3, 41)], via=False) == Position("3", 41)
    assert position_of([("content-type", b"x")], via=False) is None


def test_re_keyed_channels_name_the_ingested_partition_too() -> None:
    headers = [origin_header(3, 41), via_header(5)]
    assert position_of(headers, via=True) == Position("5:3", 41)
    assert position_of(headers, via=False) == Position("3", 41)
    assert origin_of([("content-type", b"x"), *headers]) == [origin_header(3, 41)]


def test_a_re_keyed_record_without_via_falls_back_to_the_origin_channel() -> None:
    assert position_of([origin_header(2, 7)], via=True) == Position("2", 7)
    assert origin_of([("content-type", b"x")]) == []

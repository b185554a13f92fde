"""The Kafka client's repeated log lines are limited, and say how many were left out."""

from __future__ import annotations

import logging

from streams.noise import RepeatLimit


def test_repeated_client_log_lines_are_limited_and_counted() -> None:
    now = [0.0]
    limit = RepeatLimit(every_s=30, clock=lambda: now[0])

    def record(message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka.conn", logging.ERROR, "x", 1, message, args, None)

    first = record("Unable connect to node with id %s", 1)
    assert limit.filter(first) and first.getMessage() == "Unable connect to node with id 1"
    for _ in range(74):
        now[0] += 0.2
        assert not limit.filter(record("Unable connect to node with id %s", 1))
    assert limit.filter(record("Unable to update metadata from %s", [1]))  # another kind
    now[0] = 30.0
    after = record("Unable connect to node with id %s", 1)
    assert limit.filter(after)
    assert after.getMessage() == (
        "Unable connect to node with id 1 (74 more like it in the last 30 s not logged)"
    )

"""Ingest's record handling: decode raw records, and the dead-letter record format.

:func:`decode_record` decodes a record of the events topic with our codec (structured or
binary mode) and raises :class:`~schemas.EventDecodeError` saying what was wrong;
:func:`dead_letter` makes the dead-letter record of one that failed, in the Kafka Connect
convention: the original key, value (cut to :data:`DLQ_VALUE_LIMIT` bytes) and headers
unchanged, the error in ``factorstream.dlq.*`` headers. The ingest stage
(``streams/stages.py``) uses both. The format in full:
docs/stream-engine.md#ingest-and-the-dead-letter-topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas import Event, EventDecodeError, decode

DLQ_HEADER_PREFIX: Final = "factorstream.dlq."
DLQ_VALUE_LIMIT: Final = 512 * 1024
"""Longest value copied to the DLQ (events are at most 64 KiB; Kafka's default maximum
request is about 1 MB, which the original plus our headers could exceed)."""

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DeadLetter:
    """One record for the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    headers: Headers


def record_headers(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, Any] | None,
) -> Headers:
    """A record's headers as a list of ``(name, bytes)`` pairs, whatever form Faust gave."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), value) for name, value in pairs]


def decode_record(value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> Event:
    """Our codec over one record; a tombstone is an error like any other."""
    if value is None:
        raise EventDecodeError("event", "record has no value (a tombstone)")
    return decode(value, headers)


def dead_letter(
    error: EventDecodeError,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp: float,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
) -> DeadLetter:
    """The DLQ record for a record that failed with ``error`` (format: docs/stream-engine.md)."""
    length = -1 if value is None else len(value)
    truncated = value is not None and length > DLQ_VALUE_LIMIT
    ours = {
        "reason": str(error),
        "field": error.field,
        "topic": topic,
        "partition": str(partition),
        "offset": str(offset),
        "timestamp": str(round(timestamp * 1000)),
        "value.length": str(length),
    }
    if truncated:
        ours["value.truncated"] = "true"
    return DeadLetter(
        key=key,
        value=value[:DLQ_VALUE_LIMIT] if truncated and value is not None else value,
        headers=headers + [(DLQ_HEADER_PREFIX + k, v.encode()) for k, v in ours.items()],
    )

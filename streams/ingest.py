"""Ingest's record handling: decode raw records, and the dead-letter record format.

The ingest stage (``streams/stages.py``) decodes every record of the events topic with our
codec (structured or binary mode):

* a record that fails goes to the dead-letter topic and the worker keeps going;
* a good event is enriched (``streams.enrich``: country, ASN and coordinates from the
  client's IP, best effort), re-encoded (structured mode) and forwarded to the internal
  ``<app_id>-events-ingested`` topic keyed by its ``partitionkey``, where the per-key
  folds read it, whatever key (or partition) the producer used, with its place in the
  events topic in a ``factorstream.origin`` header (``streams.positions``: how the folds
  apply each event once). Duplicate ids (a relay's re-send) are dropped by the subjects
  stage, which keeps each subject's recent ids.

**Dead-letter record format** (the Kafka Connect convention: the original record
unchanged, the error in headers):

========================================  ===============================================
key                                       the original key (bytes, or null)
value                                     the original value, byte for byte (null for a
                                          tombstone); cut to ``DLQ_VALUE_LIMIT`` bytes if
                                          longer, so a poison record cannot crash the
                                          worker with a too-large send
headers                                   the original headers, in order, then:
``factorstream.dlq.reason``               ``<field>: <reason>``, e.g. ``type: unknown
                                          event type 'x'`` (UTF-8)
``factorstream.dlq.field``                the offending field (``event``, ``type``,
                                          ``data.factor``, ...)
``factorstream.dlq.topic``                source topic
``factorstream.dlq.partition``            source partition (decimal)
``factorstream.dlq.offset``               source offset (decimal)
``factorstream.dlq.timestamp``            source record timestamp, Unix milliseconds
``factorstream.dlq.value.length``         length of the original value in bytes (-1: null)
``factorstream.dlq.value.truncated``      ``true`` only when the value was cut
========================================  ===============================================
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
    """The DLQ record for a record that failed with ``error`` (format: module docstring)."""
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

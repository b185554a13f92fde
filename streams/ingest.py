"""Ingest: decode and validate raw records; dead-letter the bad, drop duplicates, forward.

Every record of the events topic is decoded with our codec (structured or binary mode).

* A record that fails goes to the dead-letter topic and the worker keeps going.
* An event whose ``id`` was already seen (a relay's re-send) is dropped: ids are kept in
  a tumbling windowed table, windowed by the *event's* time (a re-send carries the same
  time, so it always falls in the original's window) and expired by Faust. Each id is
  kept with the place (partition, offset) of its first record, so that record read again
  after a crash is forwarded again, not dropped (``streams/positions.py``).
* A good event is enriched (``streams.enrich``: country, ASN and coordinates from the
  client's IP, best effort), re-encoded (structured mode) and forwarded to the internal
  ``<app_id>-events-ingested`` topic keyed by its ``partitionkey``, where the per-key
  folds read it, whatever key (or partition) the producer used, with its place in the
  events topic in a ``factorstream.origin`` header (``streams.positions``: how the folds
  apply each event once).

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

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, cast

import faust
from faust.tables.wrappers import WindowWrapper
from faust.types import AgentT, EventT, StreamT, TopicT

from schemas import Event, EventDecodeError, decode, encode, kafka_key
from schemas.codec import structured_headers
from streams.positions import origin_header

DLQ_HEADER_PREFIX: Final = "factorstream.dlq."
DLQ_VALUE_LIMIT: Final = 512 * 1024
"""Longest value copied to the DLQ (events are at most 64 KiB; Kafka's default maximum
request is about 1 MB, which the original plus our headers could exceed)."""

Headers = list[tuple[str, bytes | None]]


class IngestOutcome(StrEnum):
    """What ingest did with one record (the agent yields it)."""

    FORWARDED = "forwarded"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"


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


def decode_record(value: bytes | None, headers: Headers) -> Event:
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


def _dead_letter_of(record: EventT[bytes], error: EventDecodeError) -> DeadLetter:
    message = record.message
    return dead_letter(
        error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp,
        key=message.key,
        value=record.value,
        headers=record_headers(message.headers),
    )


def attach_ingest(
    app: faust.App,
    *,
    source: TopicT,
    dead_letters: TopicT,
    sink: TopicT,
    seen: WindowWrapper,
    enrich: Callable[[Event], Event] | None = None,
) -> AgentT[bytes]:
    """The ingest agent (concurrency 1) from ``source`` to ``sink`` and ``dead_letters``.

    ``enrich`` (``Enricher.enrich``, which never raises) completes each new event before it
    is forwarded; None forwards events as they came.
    """

    async def ingest(stream: StreamT[bytes]) -> AsyncIterator[IngestOutcome]:
        async for record in stream.events():
            try:
                event = decode_record(record.value, record_headers(record.message.headers))
            except EventDecodeError as error:
                letter = _dead_letter_of(record, error)
                headers = cast(list[tuple[str, bytes]], letter.headers)  # Kafka allows null values
                await dead_letters.send(key=letter.key, value=letter.value, headers=headers)
                yield IngestOutcome.DEAD_LETTERED
                continue
            message = record.message
            window = seen.relative_to(event.time.timestamp())  # event time, never the clock
            # the first record of an id is remembered by its place in the log: the same
            # record read again after a crash is no duplicate (its forward, held by Faust
            # until the offset commits, may be lost; the folds skip it if not)
            place = f"{message.partition}:{message.offset}"
            if event.id in window and window[event.id].value() != place:
                yield IngestOutcome.DUPLICATE
                continue
            window[event.id] = place
            if enrich is not None:
                event = enrich(event)
            headers = [*structured_headers(), origin_header(message.partition, message.offset)]
            await sink.send(key=kafka_key(event), value=encode(event), headers=headers)
            yield IngestOutcome.FORWARDED

    agent: AgentT[bytes] = app.agent(source, name="ingest", concurrency=1)(ingest)
    return agent

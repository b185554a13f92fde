"""Each event's effect once, under at-least-once delivery: table values remember positions.

The worker commits offsets every ``commit_interval_s``; a crash (``kill -9``) replays what
came after the last commit. Everything a processed event caused before the commit is
durable (``streams/engine.py``) — but the events after it run again, and a plain fold
would count them twice. So every key's stored value carries, beside its fold states, the
log position of the last event it applied from each *channel*:

* ingest stamps each forwarded event with its place in the events topic
  (``factorstream.origin: <partition>:<offset>``);
* the subjects stage, forwarding to a re-keyed topic, adds the partition of the subjects
  table it folded the event in (``factorstream.via: <partition>``).

A channel is the origin partition for the folds keyed by ``partitionkey`` (a key's events
all reach one partition of the subjects stage: in the batch they were read in, or over
the by-subject topic), and ``<via>:<origin partition>`` for the re-keyed folds (each such
pair is one FIFO path into a re-keyed partition). Offsets only grow along a channel, so
an event at or below the remembered offset was applied already and is skipped. That also
drops ingest's own re-forwards after a crash (same origin, new offset in the by-subject
topic).

The stages keep them in each key's stored value (``"applied": {<channel>: <offset>}``,
``streams/stages.py``), written with a state change or derived events: applying a no-op
event twice is harmless, since folds are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

ORIGIN_HEADER: Final = "factorstream.origin"
VIA_HEADER: Final = "factorstream.via"

JsonState = dict[str, Any]
"""A fold's state as its table stores it (JSON builtins)."""


@dataclass(frozen=True)
class Position:
    """Where an event sits on its channel."""

    channel: str
    offset: int


def origin_header(partition: int, offset: int) -> tuple[str, bytes]:
    return ORIGIN_HEADER, f"{partition}:{offset}".encode()


def via_header(partition: int) -> tuple[str, bytes]:
    return VIA_HEADER, str(partition).encode()


def origin_of(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The origin header among ``headers`` (none or one), to pass on."""
    return [(name, value) for name, value in headers if name == ORIGIN_HEADER and value]


def position_of(headers: Iterable[tuple[str, bytes | None]], *, via: bool) -> Position | None:
    """The event's position from its record headers; ``None`` without an origin header
    (records not forwarded by ingest: always applied). ``via``: the re-keyed channel."""
    found = {name: value for name, value in headers if value is not None}
    origin = found.get(ORIGIN_HEADER)
    if origin is None:
        return None
    partition, _, offset = origin.decode().partition(":")
    if via and VIA_HEADER in found:
        return Position(f"{found[VIA_HEADER].decode()}:{partition}", int(offset))
    return Position(partition, int(offset))

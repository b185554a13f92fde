"""Each event's effect once, under at-least-once delivery: table values remember positions.

The worker commits offsets every ``commit_interval_s``; a crash (``kill -9``) replays what
came after the last commit. Faust flushes the producer before it commits, so everything a
processed event caused before the commit is durable — but the events after it run again,
and a plain fold would count them twice. So every fold's table value carries, beside the
fold's state, the log position of the last event it applied from each *channel*:

* ingest stamps each forwarded event with its place in the events topic
  (``factorstream.origin: <partition>:<offset>``);
* the rekey agent adds the ingested partition it read the event from
  (``factorstream.via: <partition>``).

A channel is the origin partition for the folds keyed by ``partitionkey`` (a key's events
all cross one ingested partition), and ``<via>:<origin partition>`` for the re-keyed folds
(each such pair is one FIFO path into a re-keyed partition). Offsets only grow along a
channel, so an event at or below the remembered offset was applied already and is
skipped. That also drops ingest's own re-forwards after a crash (same origin, new offset
in the ingested topic), which the dedupe table may have missed.

Table value format (JSON builtins): ``{"state": <the fold's state or null>, "applied":
{<channel>: <offset>}}``. Positions are written only with a state change or derived
events: applying a no-op event twice is harmless, since folds are deterministic.
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


def fold_state(value: JsonState | None) -> JsonState | None:
    """The fold's state inside a table value (``None``: never seen, or reset)."""
    return None if value is None else value.get("state")


def applied(value: JsonState | None, position: Position | None) -> bool:
    """Whether the table value already holds the effect of the event at ``position``."""
    if value is None or position is None:
        return False
    offset: int = value.get("applied", {}).get(position.channel, -1)
    return offset >= position.offset


def after(
    value: JsonState | None, state: JsonState | None, position: Position | None
) -> JsonState | None:
    """The table value once the event at ``position`` left the fold in ``state``
    (``None``: nothing to keep, delete the key)."""
    positions: dict[str, int] = dict(value.get("applied", {})) if value else {}
    if position is not None:
        positions[position.channel] = position.offset
    if state is None and not positions:
        return None
    return {"state": state, "applied": positions}

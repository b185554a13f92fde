"""Sliding windows, cool-downs and the JSON form of detection states.

A window is a tuple of :class:`Mark` (event time, event id, a short label), sorted by time
and pruned on every update, so a state never grows past what its rule can look at:

* a mark counts while ``now - mark.at <= window`` (the boundary is inside the window);
* a counting rule that fires at ``N`` marks keeps at most the ``N`` newest marks, which is
  exactly enough to decide ``count >= N`` and is the state's hard bound.

A cool-down is the time of the last firing: a rule whose condition holds fires only when it
never fired or fired at least ``cooldown`` earlier (event time; a last firing "in the
future", from events out of order, counts as recent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec


class Mark(NamedTuple):
    """One event a window remembers."""

    at: datetime
    event_id: str
    label: str = ""
    """What the rule needs of the event: a factor, a subject, a country, a reason."""


Marks = tuple[Mark, ...]


def slide(marks: Marks, *, now: datetime, window: timedelta, keep: int) -> Marks:
    """The marks still inside ``window`` at ``now``, the ``keep`` newest of them."""
    if keep <= 0:
        return ()
    try:
        oldest = now - window  # inside: now - at <= window, that is at >= now - window
    except OverflowError:  # a time within the window of year 1
        inside = sorted([m for m in marks if now - m.at <= window])
    else:
        inside = sorted([m for m in marks if m.at >= oldest])
    return tuple(inside[-keep:])


def add(marks: Marks, mark: Mark, *, now: datetime, window: timedelta, keep: int) -> Marks:
    """``mark`` added to the window (sorted, as every window is), which is then pruned (see
    :func:`slide`)."""
    try:
        oldest = now - window
    except OverflowError:
        oldest = None
    if oldest is None or keep <= 0 or mark.at < oldest or (marks and mark < marks[-1]):
        return slide((*marks, mark), now=now, window=window, keep=keep)
    # the usual case, a new newest mark inside the window: the window stays sorted, and
    # what leaves it is a run of its oldest marks (only they are looked at)
    first, last = 0, len(marks)
    while first < last and marks[first].at < oldest:
        first += 1
    start = max(first, last + 1 - keep)
    return (*marks[start:], mark)


def latest_per_label(marks: Marks, *, now: datetime, window: timedelta, keep: int) -> Marks:
    """The newest mark of each label inside ``window``; the ``keep`` newest labels."""
    newest: dict[str, Mark] = {}
    for mark in sorted(marks):
        if now - mark.at <= window:
            newest[mark.label] = mark
    return tuple(sorted(newest.values())[-keep:]) if keep > 0 else ()


def cooled(last_fired: datetime | None, now: datetime, cooldown: timedelta) -> bool:
    """May a rule that last fired at ``last_fired`` fire again at ``now``?"""
    return last_fired is None or now - last_fired >= cooldown


def duration_text(delta: timedelta) -> str:
    """``delta`` for a summary: ``45 s``, ``12 min``, ``3 h``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = int(abs(delta).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 180:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 72:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# -- JSON form ---------------------------------------------------------------------------


_encode_time = msgspec.json.Encoder().encode


def isoformat(value: datetime) -> str:
    """``value.isoformat()``; for UTC (the times of decoded events) about five times
    faster (msgspec formats the same RFC 3339 text in C, writing the offset as ``Z``): a
    stored state is dumped at every commit that changed it, and its times were most of
    that work."""
    if value.tzinfo is not UTC:  # msgspec rounds other offsets to the minute
        return value.isoformat()
    return _encode_time(value)[1:-2].decode() + "+00:00"


def iso(value: datetime | None) -> str | None:
    return None if value is None else isoformat(value)


def marks_to_json(marks: Marks) -> list[list[str]]:
    return [[isoformat(m.at), m.event_id, m.label] for m in marks]


def marks_from_json(data: Mapping[str, Any], key: str) -> Marks:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list, found {value!r}")
    fromisoformat = datetime.fromisoformat
    try:  # the hot path of every table read: validate by construction, explain on failure
        marks = [Mark(fromisoformat(at), event_id, label) for at, event_id, label in value]
    except (TypeError, ValueError):
        marks = []
    if len(marks) != len(value) or not all(
        m.at.tzinfo is not None and type(m.event_id) is str and type(m.label) is str for m in marks
    ):
        for item in value:
            if not (isinstance(item, list) and len(item) == 3):
                raise ValueError(f"{key}: expected [time, event id, label] items, found {item!r}")
            if not (isinstance(item[1], str) and isinstance(item[2], str)):
                raise ValueError(f"{key}: expected [time, event id, label] items, found {item!r}")
            parse_time(item[0], key)
    return tuple(sorted(marks))


def parse_time(value: object, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{key}: expected an RFC 3339 time with offset, found {value!r}")
    return parsed


def optional_time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else parse_time(value, key)


def count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: expected an integer >= 0, found {value!r}")
    return value


def optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key}: expected a string or null, found {value!r}")
    return value


def string_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: expected a list of strings, found {value!r}")
    return tuple(value)


def seen_to_json(seen: Iterable[tuple[str, datetime]]) -> dict[str, str]:
    """``(value, last seen)`` pairs as a JSON object."""
    return {value: isoformat(at) for value, at in seen}


def seen_from_json(data: Mapping[str, Any], key: str) -> tuple[tuple[str, datetime], ...]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected an object, found {value!r}")
    return tuple(sorted((str(k), parse_time(v, f"{key}.{k}")) for k, v in value.items()))


def check_version(data: Mapping[str, Any], version: int) -> None:
    if data.get("version") != version:
        raise ValueError(f"version: expected {version}, found {data.get('version')!r}")


@dataclass(frozen=True, slots=True)
class BurstCounter:
    """A window of marks and the last firing: "``needed`` events within ``window``"."""

    marks: Marks = ()
    last_fired: datetime | None = None

    def count(
        self,
        mark: Mark,
        *,
        window: timedelta,
        needed: int,
        cooldown: timedelta,
    ) -> tuple[BurstCounter, bool]:
        """``mark`` counted at its time; whether the rule fires now (then it is recorded)."""
        now = mark.at
        marks = add(self.marks, mark, now=now, window=window, keep=needed)
        fires = len(marks) >= needed and cooled(self.last_fired, now, cooldown)
        return BurstCounter(marks, now if fires else self.last_fired), fires

    def to_dict(self) -> dict[str, Any]:
        return {"marks": marks_to_json(self.marks), "last_fired": iso(self.last_fired)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BurstCounter:
        return cls(marks_from_json(data, "marks"), optional_time(data, "last_fired"))


def nested(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: expected an object, found {value!r}")
    return value

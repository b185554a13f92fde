"""Event-time slots and periods: rules whose results do not depend on arrival order.

The folds keyed by client IP (password spray, per-IP blocking) or by tenant (SMS pumping)
see one key's events from many partitions, interleaved differently on each run. They share
one model, in which the final state and the set of derived events are functions of the set
of events of the key: counts in UTC-aligned slots (:class:`Grid`, :func:`make_grid`) that
only grow, at most one firing per UTC-aligned period, derived events that depend on the
key, the period and the tenant alone (:func:`derived_event`), and an event more than
``lateness`` (:data:`LATENESS` unless the rule sets its own) behind the key's newest not
counted. A change of window or period starts a key's state afresh.
The model in full: docs/detections.md#event-time-slots-and-periods.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from schemas import Event, new_event, uuid7
from schemas.payloads import Payload

LATENESS: Final = timedelta(hours=1)
"""How far behind the newest event of a key an event may arrive and still be counted."""
MIN_SLOT_SECONDS: Final = 60
SLOTS_PER_WINDOW: Final = 60

Labels = tuple[str, ...]


@dataclass(frozen=True)
class Grid:
    """Slots and periods of a rule, in whole seconds since the Unix epoch."""

    slot: int
    """Seconds per slot."""
    span: int
    """The window of slot ``s`` is ``s - span .. s``."""
    period: int
    """Seconds per period (a rule fires at most once per period)."""
    late: int
    """Slots an event may lag behind the newest slot and still be counted."""

    def slot_of(self, at: datetime) -> int:
        return int(at.timestamp() // self.slot)

    def period_of(self, slot: int) -> int:
        """The period a slot belongs to (by the slot's start)."""
        return slot * self.slot // self.period

    def period_start(self, period: int) -> datetime:
        return datetime.fromtimestamp(period * self.period, UTC)

    def slot_start(self, slot: int) -> datetime:
        return datetime.fromtimestamp(slot * self.slot, UTC)

    def slots_text(self, count: int) -> str:
        """``count`` slots, for summaries: ``61 whole minutes``."""
        if self.slot == 60:
            return f"{count} whole minutes"
        return f"{count} slots of {self.slot} s"


@lru_cache(maxsize=64)
def make_grid(
    window: timedelta, period: timedelta, lateness: timedelta = LATENESS, *, span: int | None = None
) -> Grid:
    """The grid of a rule over ``window``, firing at most once per ``period``. ``span``
    overrides the window's slots (SMS burst rate: the event's minute and the ones before
    it, ``ceil(window / 1 min)`` in all)."""
    slot = max(MIN_SLOT_SECONDS, math.ceil(window.total_seconds() / SLOTS_PER_WINDOW))
    slots = math.ceil(window.total_seconds() / slot) if span is None else span
    return Grid(
        slot=slot,
        span=slots,
        period=max(1, math.ceil(period.total_seconds())),
        late=math.ceil(lateness.total_seconds() / slot),
    )


@dataclass(frozen=True)
class SubjectSlots:
    """Distinct subjects (labels ``tenant/subject``) per slot, for "``need`` distinct
    subjects within the window". A slot keeps its labels until it has ``need`` of them;
    then it is only marked full (any window holding it meets the rule, whatever else it
    holds), so a slot holds at most ``need - 1`` labels. Never mutated."""

    labels: Mapping[int, Labels] = field(default_factory=dict)
    full: frozenset[int] = frozenset()
    order: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """Every slot held (with labels or full), in order: what ranges and forgetting read."""

    def add(self, slot: int, label: str, need: int) -> SubjectSlots:
        """``label`` counted in ``slot``: a new value, or this very object if unchanged."""
        if slot in self.full:
            return self
        have = self.labels.get(slot)
        if have is None:
            order = self.order
            if not order or slot > order[-1]:
                order = (*order, slot)
            else:
                at = bisect_left(order, slot)
                order = (*order[:at], slot, *order[at:])
            have = ()
        elif label in have:
            return self
        else:
            order = self.order
        labels = dict(self.labels)
        if len(have) + 1 >= need:
            labels.pop(slot, None)
            return SubjectSlots(labels, self.full | {slot}, order)
        labels[slot] = tuple(sorted((*have, label)))
        return SubjectSlots(labels, self.full, order)

    def slots_in(self, first: int, last: int) -> tuple[int, ...]:
        """The slots from ``first`` to ``last`` with an event, in order."""
        order = self.order
        return order[bisect_left(order, first) : bisect_right(order, last)]

    def met(self, first: int, last: int, need: int) -> bool:
        """Do slots ``first .. last`` hold ``need`` distinct subjects?"""
        labels, full = self.labels, self.full
        seen: set[str] = set()
        for s in self.slots_in(first, last):
            if s in full:
                return True
            seen.update(labels[s])
        return len(seen) >= need

    def since(self, oldest: int) -> SubjectSlots:
        """The slots from ``oldest`` on (this very object if nothing is older)."""
        order = self.order
        if not order or order[0] >= oldest:
            return self
        cut = bisect_left(order, oldest)
        labels = dict(self.labels)
        for s in order[:cut]:
            labels.pop(s, None)
        full = self.full
        if full:
            full = frozenset(s for s in full if s >= oldest)
        return SubjectSlots(labels, full, order[cut:])

    def to_json(self) -> dict[str, Any]:
        return {
            "slots": [[s, list(self.labels[s])] for s in sorted(self.labels)],
            "full": sorted(self.full),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SubjectSlots:
        slots, full = data.get("slots", []), data.get("full", [])
        good = isinstance(slots, list) and all(
            isinstance(item, list)
            and len(item) == 2
            and type(item[0]) is int
            and isinstance(item[1], list)
            and item[1]
            and all(isinstance(label, str) for label in item[1])
            for item in slots
        )
        if not good:
            raise ValueError(f"slots: expected [[slot, [label, ...]], ...], found {slots!r}")
        if not (isinstance(full, list) and all(type(s) is int for s in full)):
            raise ValueError(f"full: expected a list of slots, found {full!r}")
        labels = {s: tuple(sorted(some)) for s, some in slots}
        if len(labels) != len(slots) or not labels.keys().isdisjoint(full):
            raise ValueError(f"slots: expected each slot once, in slots or full, found {data!r}")
        return cls(labels, frozenset(full), tuple(sorted({*labels, *full})))


def derived_event(
    payload: Payload, *, source: str, tenant: str, subject: str, at: datetime, what: str
) -> Event:
    """An event derived from a bucket of events rather than from one trigger: its id is a
    function of ``what`` (the key, rule, period and tenant it is about) and ``at``, and it
    is its own correlation (there is no one login transaction behind it)."""
    digest = hashlib.sha256(f"{type(payload).__name__}|{what}".encode()).digest()
    event_id = uuid7(at, random_bits=int.from_bytes(digest[:10], "big") >> 6)
    return new_event(
        payload,
        source=source,
        tenant=tenant,
        subject=subject,
        correlationid=event_id,
        now=at,
        event_id=event_id,
    )


def int_pairs(data: Mapping[str, Any], key: str, width: int) -> list[tuple[int, ...]]:
    """``data[key]`` as a list of ``width`` integers each (``[]`` if absent)."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(item, list) and len(item) == width and all(type(v) is int for v in item)
        for item in value
    ):
        raise ValueError(f"{key}: expected a list of {width} integers each, found {value!r}")
    return [tuple(item) for item in value]


def int_list(data: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise ValueError(f"{key}: expected a list of integers, found {value!r}")
    return tuple(sorted(value))


def optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and type(value) is not int:
        raise ValueError(f"{key}: expected an integer or null, found {value!r}")
    return value

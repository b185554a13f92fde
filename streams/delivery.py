"""In-order delivery: each partition's records reach the agents without holes (pure).

Faust (faust-streaming 0.15) can skip records after a rebalance or a restart, and a
``kill -9`` soon after loses them (docs/faust-consumer-faults.md). So the worker's
consumer (``streams/consumer.py``) positions every partition itself at the end of each
rebalance, checks every record against the offset it expects next on that partition, and
asks :func:`next_action` what to do: hold it back (not positioned yet), deliver it (the
expected offset), drop it (an earlier one), or rewind (a later one), accepting a hole only
when the same later offset comes back right after rewinding to the same place.
:class:`StallWatch` and :func:`unread` decide when a partition that stopped is repaired.
The decisions in full: docs/faust-consumer-faults.md#in-order-delivery-record-by-record.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field


class Action(enum.Enum):
    HOLD = "hold"
    DELIVER = "deliver"
    DROP = "drop"
    REWIND = "rewind"


@dataclass(frozen=True)
class Probe:
    """A rewind in progress: back to ``expected`` after reading ``seen`` there."""

    expected: int
    seen: int


def next_action(expected: int | None, offset: int, probe: Probe | None) -> Action:
    """What to do with the record at ``offset`` when ``expected`` is due next.

    ``expected`` is ``None`` while the partition has no position of ours (assigned, not
    yet sought); ``probe`` is the partition's last rewind, if any.
    """
    if expected is None:
        return Action.HOLD
    if offset == expected:
        return Action.DELIVER
    if offset < expected:
        return Action.DROP
    if probe == Probe(expected, offset):
        return Action.DELIVER  # read twice from the same place: a real hole in the log
    return Action.REWIND


def read_again_from(due: int | None, start: int | None, start_acked: bool) -> int | None:
    """Where to read a partition again from when nothing is in flight (the engine idle, no
    rebalance), or ``None`` when it is fine.

    ``start`` is the offset its next commit starts from (the committed one, or where
    reading began when it was never committed), ``due`` the next one this consumer expects.
    Idle, every record in ``start .. due - 1`` was delivered and should be acknowledged by
    now. If ``start`` is not, it was dropped on its way to the engine and never will be: the
    commit stays held there and the lag grows, though later records are processed. A
    partition with no offset due was never positioned after its assignment: its records
    are being held back for good. Both are read again from ``start`` (records the engine
    applied already are skipped by position)."""
    if start is None:
        return None
    if due is None:
        return start
    if due > start and not start_acked:
        return start
    return None


class Unread(enum.Enum):
    """Why records that wait in a partition's log past the offset due do not arrive."""

    NONE = "none wait"
    NOT_FETCHED = "the Kafka client has not fetched them"
    HELD = "the Kafka client holds them fetched and hands them to no one"
    PASSED = "the Kafka client read past them and none was delivered"


def unread(due: int, end: int | None, position: int | None, buffered: bool) -> Unread:
    """Whether, and how, records wait unread in a partition whose offset due is ``due``,
    whose log ends at ``end``, where the Kafka client's fetch ``position`` is (``None``:
    it has none) and which it holds fetched records of (``buffered``).

    ``PASSED`` is what Faust leaves when its ``getmany`` drops the rest of a batch (see
    the top of this module) and no later record comes to show the gap: the last records
    of a burst stay unread for good. It is also what a log that ends in transaction
    markers looks like, which the client reads past without a record to deliver: reading
    again from ``due`` tells them apart (:func:`repair_for`)."""
    if end is None or end <= due:
        return Unread.NONE
    if buffered:
        return Unread.HELD
    if position is None or position < end:
        return Unread.NOT_FETCHED
    return Unread.PASSED


class Repair(enum.Enum):
    """What the consumer does about a partition left unread (:func:`unread`) for
    ``after_s`` seconds with nothing in flight: first the least, then more."""

    RESUME = "resume fetching it and read again from the offset due"
    REJOIN = "rejoin the consumer group (a new assignment resets every fetch)"
    NONE = "none: read again already, nothing came, so the log ends in transaction markers"


def repair_for(times: int, why: Unread) -> Repair:
    """The repair for the ``times``-th time (1, 2, …) in a row the same partition is found
    unread at the same offset: a resume and a read from the offset due first. Read past
    again after that, the offsets up to the end hold no record (transaction markers); held
    or not fetched again, the group is rejoined."""
    if times <= 1:
        return Repair.RESUME
    return Repair.NONE if why is Unread.PASSED else Repair.REJOIN


@dataclass
class StallWatch:
    """Things that stay wrong for ``after_s`` seconds in a row in the same state: partitions
    (:func:`read_again_from`, the state their offsets: a commit that is merely late does
    not count) and runners (the state their batch count)."""

    after_s: float
    _since: dict[object, tuple[Hashable, float]] = field(default_factory=dict)

    def stuck(self, key: object, state: Hashable, wrong: bool, now: float) -> bool:
        if not wrong:
            self._since.pop(key, None)
            return False
        seen = self._since.get(key)
        if seen is None or seen[0] != state:
            self._since[key] = (state, now)
            return False
        return now - seen[1] >= self.after_s

    def restart(self, key: object, state: Hashable, now: float) -> None:
        """Count ``key``'s wait from ``now`` again (after reporting it)."""
        self._since[key] = (state, now)

    def clear(self, key: object | None = None) -> None:
        if key is None:
            self._since.clear()
        else:
            self._since.pop(key, None)

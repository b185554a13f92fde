"""The in-order delivery decision (streams/delivery.py), record by record."""

from __future__ import annotations

import pytest

from streams.delivery import (
    Action,
    Probe,
    Repair,
    StallWatch,
    Unread,
    next_action,
    read_again_from,
    repair_for,
    unread,
)


def test_the_due_offset_is_delivered() -> None:
    assert next_action(7, 7, None) is Action.DELIVER


@pytest.mark.parametrize("offset", [0, 1234])
def test_a_record_read_before_the_partition_is_sought_is_held_back(offset: int) -> None:
    """Between an assignment and the seek that ends the rebalance nothing is delivered:
    the seek reads it again from the committed offset."""
    assert next_action(None, offset, None) is Action.HOLD
    assert next_action(None, offset, Probe(expected=0, seen=offset)) is Action.HOLD


@pytest.mark.parametrize("offset", [0, 5, 6])
def test_an_offset_already_delivered_is_dropped(offset: int) -> None:
    assert next_action(7, offset, None) is Action.DROP


@pytest.mark.parametrize("offset", [8, 20])
def test_an_offset_past_the_due_one_sends_the_consumer_back(offset: int) -> None:
    assert next_action(7, offset, None) is Action.REWIND


def test_the_same_offset_again_after_going_back_is_a_real_hole() -> None:
    assert next_action(5, 6, Probe(expected=5, seen=6)) is Action.DELIVER


def test_a_different_offset_after_going_back_is_another_loss_not_a_hole() -> None:
    """Losing records twice in a row must not pass for a hole in the log."""
    assert next_action(5, 9, Probe(expected=5, seen=6)) is Action.REWIND


def test_a_probe_from_another_place_proves_nothing_here() -> None:
    assert next_action(12, 13, Probe(expected=5, seen=13)) is Action.REWIND


def test_a_partition_read_through_holes_and_losses_delivers_each_record_once() -> None:
    """Drive the decision over a simulated partition: markers at 3 and 8 (never
    readable), and a fetch that loses 10-12 once (read again after going back)."""
    log = [n for n in range(15) if n not in (3, 8)]
    lost_once = {10, 11, 12}
    position, due, probe, delivered, rewinds = 0, 0, None, [], 0
    while position < 15:
        batch = [n for n in log if n >= position][:4]
        if not batch:
            break
        position = batch[-1] + 1
        for offset in batch:
            if offset in lost_once:
                lost_once.discard(offset)
                continue
            step = next_action(due, offset, probe)
            if step is Action.DELIVER:
                delivered.append(offset)
                due, probe = offset + 1, None
            elif step is Action.REWIND:
                probe, position, rewinds = Probe(due, offset), due, rewinds + 1
                break
    assert delivered == log
    assert rewinds == 3  # one per marker, one for the loss


@pytest.mark.parametrize(
    ("due", "start", "start_acked", "again"),
    [
        (10, 10, False, None),  # everything delivered is committed: fine
        (15, 10, True, None),  # delivered and acknowledged, the commit comes next: fine
        (15, 10, False, 10),  # 10 delivered, never acknowledged, nothing in flight: lost
        (None, 10, False, 10),  # assigned, never positioned: its records are held back
        (None, None, False, None),  # not even where to start from: the caller looks it up
        (5, 10, False, None),  # a seek back below the commit (a rewind) is no loss
    ],
)
def test_what_is_read_again_when_nothing_is_in_flight(
    due: int | None, start: int | None, start_acked: bool, again: int | None
) -> None:
    assert read_again_from(due, start, start_acked) == again


def test_a_partition_is_stuck_only_after_the_same_offsets_for_the_whole_wait() -> None:
    watch = StallWatch(after_s=30)
    assert not watch.stuck("p0", (15, 10), True, now=0)
    assert not watch.stuck("p0", (15, 10), True, now=29)
    assert watch.stuck("p0", (15, 10), True, now=30)
    assert not watch.stuck("p0", (16, 10), True, now=31)  # it moved: the wait starts again
    assert not watch.stuck("p0", (16, 10), True, now=60)
    assert not watch.stuck("p0", (16, 10), False, now=70)  # fine again: forgotten
    assert not watch.stuck("p0", (16, 10), True, now=71)
    assert watch.stuck("p0", (16, 10), True, now=101)
    watch.clear("p0")
    assert not watch.stuck("p0", (16, 10), True, now=200)


@pytest.mark.parametrize(
    ("due", "end", "position", "buffered", "why"),
    [
        (10, 10, 10, False, Unread.NONE),  # read to the end: nothing waits
        (10, None, 10, False, Unread.NONE),  # the end is unknown: nothing to say
        (10, 15, 10, False, Unread.NOT_FETCHED),  # records wait, none fetched
        (10, 15, None, False, Unread.NOT_FETCHED),  # the client has no position at all
        (10, 15, 12, False, Unread.NOT_FETCHED),  # the client stopped half-way
        (10, 15, 15, True, Unread.HELD),  # fetched, and held back by the client
        (10, 15, 15, False, Unread.PASSED),  # fetched past, none delivered (or markers)
    ],
)
def test_why_records_are_left_unread(
    due: int, end: int | None, position: int | None, buffered: bool, why: Unread
) -> None:
    assert unread(due, end, position, buffered) is why


def test_a_partition_left_unread_is_read_again_first_then_the_group_rejoined() -> None:
    for why in (Unread.NOT_FETCHED, Unread.HELD):
        assert [repair_for(times, why) for times in (1, 2, 3)] == [
            Repair.RESUME,
            Repair.REJOIN,
            Repair.REJOIN,
        ]


def test_a_log_read_past_twice_without_a_record_ends_in_markers() -> None:
    assert repair_for(1, Unread.PASSED) is Repair.RESUME  # the records may have been dropped
    assert repair_for(2, Unread.PASSED) is Repair.NONE  # read again, still none: no records

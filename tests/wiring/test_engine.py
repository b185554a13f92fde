"""The engine's I/O order (streams/engine.py), with the broker side faked by a journal.

What a batch caused must be durable in this order: the records it produced, then its
acknowledgement, then (at the next commit) its state in the table, each changed key once.
A batch fetched before a rebalance is never processed; a batch that failed never has its
state written. The real broker tests are in tests/integration.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from faust.types import TP, Message

from schemas import Event, decode
from schemas.codec import Headers
from schemas.fields import PolicyTier
from streams import stages
from streams.app import Pipeline
from streams.engine import UNACKED_BATCHES, EngineFailed, Handoff, KeyedRunner
from streams.stages import Emit, Record
from streams.topology import LOCKOUT
from tests.factories import T0, sample_event
from tests.support import until
from tests.wiring.fixtures import (
    Journal,
    as_fetched,
    event_messages,
    folds_pipeline,
    journal_of,
    produced_as_read,
)
from verifiers.lockout import LockoutState
from verifiers.policy import TIERS

BUSINESS = TIERS[PolicyTier.BUSINESS]


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return folds_pipeline(tmp_path)


def login_failures(n: int, *, subject: str = "u-1") -> list[Event]:
    return [
        sample_event("auth.login.attempted", subject=subject, now=T0 + timedelta(seconds=10 * i))
        for i in range(n)
    ]


def fetched(pipeline: Pipeline, events: list[Event]) -> tuple[TP, list[Message]]:
    """``events`` (one subject's) as the subjects runner fetches them from the events
    topic (ingest runs in front of its stage)."""
    ((tp, batch),) = as_fetched(pipeline, events).items()
    return tp, batch


def subjects_of(pipeline: Pipeline) -> KeyedRunner:
    return pipeline.engine.keyed("subjects")


def assert_acked_once_durable_then_written(journal: Journal, batch: list[Message]) -> None:
    """Every record of ``batch`` acked in fetch order, after every produced record was
    durable, and the state written after the last ack (at the commit)."""
    kinds = journal.kinds()
    last_produce = max(i for i, k in enumerate(kinds) if k == "produce")
    acks = [i for i, k in enumerate(kinds) if k == "ack"]
    assert [e.offset for e in journal.of("ack")] == [m.offset for m in batch]
    assert min(acks) > last_produce
    assert kinds.index("write") > max(acks)


def lockout_in(stored: object) -> LockoutState:
    assert isinstance(stored, dict)
    return LockoutState.from_dict(stored["states"][LOCKOUT])


async def test_a_batch_is_produced_at_once_and_its_state_written_at_the_flush_once_per_key(
    pipeline: Pipeline,
) -> None:
    journal, subjects = journal_of(pipeline), subjects_of(pipeline)
    table = pipeline.tables["subjects"]
    ones, twos = login_failures(BUSINESS.max_failures), login_failures(2, subject="u-2")
    events = ones + twos
    tp, batch = fetched(pipeline, ones)

    await subjects.handle({tp: batch[:3]})
    await subjects.handle({tp: batch[3:]})
    await subjects.handle(as_fetched(pipeline, twos))

    assert journal.of("write") == []  # nothing in the table before the commit
    assert table.get(b"acme/u-1") is None
    (applied,) = journal.events(pipeline.lockouts.get_topic_name())
    assert applied.type == "lockout.applied" and applied.subject == "u-1"
    assert len(journal.of("produce", pipeline.rekeyed["ip"].get_topic_name())) == len(events)

    await pipeline.engine.flush()

    writes = journal.of("write")
    assert [w.key for w in writes] == [b"acme/u-1", b"acme/u-2"]  # once each
    assert {w.topic for w in writes} == {table.changelog_topic.get_topic_name()}
    kinds = journal.kinds()
    assert kinds.index("write") > max(i for i, k in enumerate(kinds) if k == "produce")
    assert lockout_in(table.get(b"acme/u-1")).failures == BUSINESS.max_failures
    assert lockout_in(table.get(b"acme/u-2")).failures == 2
    before = len(journal.entries)
    await pipeline.engine.flush()
    assert len(journal.entries) == before  # clean: nothing to write again


async def test_a_batch_is_acked_once_its_records_are_durable_and_the_flush_waits_for_it(
    pipeline: Pipeline,
) -> None:
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    tp, batch = fetched(pipeline, login_failures(BUSINESS.max_failures))
    journal.hold = True  # the broker has not confirmed the records yet
    running = asyncio.create_task(subjects.run())
    try:
        await engine.dispatch(engine.epoch, {tp: batch})
        await until(lambda: len(journal.unsettled) > 0)  # its records sent, none confirmed
        flushing = asyncio.create_task(engine.flush())  # a commit comes meanwhile
        await asyncio.sleep(0.05)

        assert journal.of("ack") == [] and journal.of("write") == []
        assert not flushing.done()  # it waits for the batch in flight
        journal.hold = False  # the broker confirms from now on (the changelog records too)
        journal.settle()
        await asyncio.wait_for(flushing, 5)
    finally:
        running.cancel()

    assert_acked_once_durable_then_written(journal, batch)
    assert [w.key for w in journal.of("write")] == [b"acme/u-1"]


async def test_the_next_batch_is_folded_while_the_broker_takes_the_records_of_the_one_before(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner does not wait for the broker between batches: the second batch is folded
    (its lock visible) while the first batch's records are unconfirmed; nothing is acked
    until they land, then both batches in fetch order, and the commit writes the state
    only after both landed."""
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    events = login_failures(BUSINESS.max_failures)
    tp, batch = fetched(pipeline, events)
    first, second = batch[:2], batch[2:]
    records_of = subjects.stage_records

    def fetched_meanwhile(at: TP, messages: list[Message], emits: list[Emit]) -> list[Record]:
        if subjects.queue.empty() and subjects.batches == 0 and not subjects.unacked:
            subjects.queue.put_nowait((engine.epoch, {tp: second}))  # while the first is folded
        return records_of(at, messages, emits)

    monkeypatch.setattr(subjects, "stage_records", fetched_meanwhile)
    journal.hold = True  # the broker confirms nothing yet
    running = asyncio.create_task(subjects.run())
    try:
        await engine.dispatch(engine.epoch, {tp: first})
        await until(lambda: len(subjects.unacked) == 2)  # both processed, none landed
        assert lockout_in(subjects.stored(b"acme/u-1")).locked_until is not None
        assert journal.of("ack") == [] and journal.of("write") == []
        flushing = asyncio.create_task(engine.flush())
        await asyncio.sleep(0.05)
        assert not flushing.done()  # the commit waits for both batches' records
        journal.hold = False
        journal.settle()
        await asyncio.wait_for(flushing, 5)
    finally:
        running.cancel()

    assert_acked_once_durable_then_written(journal, batch)
    assert (subjects.batches, list(subjects.unacked)) == (2, [])


async def test_a_runner_waits_for_the_broker_beyond_its_unacked_batches(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-pressure: with the broker confirming nothing, a runner processes at most
    ``UNACKED_BATCHES`` + 1 batches, then waits."""
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    events = login_failures(UNACKED_BATCHES + 3)
    tp, batch = fetched(pipeline, events)
    records_of = subjects.stage_records

    def one_more_meanwhile(at: TP, messages: list[Message], emits: list[Emit]) -> list[Record]:
        done = subjects.batches + len(subjects.unacked)
        if done + 1 < len(batch) and subjects.queue.empty():
            subjects.queue.put_nowait((engine.epoch, {tp: batch[done + 1 : done + 2]}))
        return records_of(at, messages, emits)

    monkeypatch.setattr(subjects, "stage_records", one_more_meanwhile)
    journal.hold = True
    running = asyncio.create_task(subjects.run())
    try:
        await engine.dispatch(engine.epoch, {tp: batch[:1]})
        await until(lambda: len(subjects.unacked) == UNACKED_BATCHES + 1)
        await asyncio.sleep(0.05)
        assert len(subjects.unacked) == UNACKED_BATCHES + 1  # and no further
        assert journal.of("ack") == []
        journal.hold = False
        journal.settle()
        await until(lambda: subjects.batches == len(batch))
    finally:
        running.cancel()
    assert [e.offset for e in journal.of("ack")] == [m.offset for m in batch]


async def test_a_batch_fetched_before_a_rebalance_is_dropped_without_ack(
    pipeline: Pipeline,
) -> None:
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    tp, batch = fetched(pipeline, login_failures(2))
    fetched_in = engine.epoch
    running = asyncio.create_task(subjects.run())
    try:
        await subjects.lock.acquire()  # the runner is held still (a commit is writing)
        await engine.dispatch(fetched_in, {tp: batch})
        await until(subjects.queue.empty)  # taken by the runner, which waits for the lock
        revoking = asyncio.create_task(engine.revoke())
        await until(lambda: engine.epoch != fetched_in)
        subjects.lock.release()
        await asyncio.wait_for(revoking, 5)

        assert journal.entries == []  # neither processed, nor produced, nor acked
        assert (subjects.batches, subjects.cache.dirty) == (0, {})
        await engine.dispatch(fetched_in, {tp: batch})  # fetched before: not even queued
        assert subjects.queue.empty()

        await engine.dispatch(engine.epoch, {tp: batch})  # read again after the rebalance
        await until(lambda: len(journal.of("ack")) == len(batch))
        await until(lambda: journal.of("write") != [])  # idle: its state written at once
    finally:
        running.cancel()
    assert subjects.batches == 1
    assert [w.key for w in journal.of("write")] == [b"acme/u-1"]


async def test_a_new_assignment_forgets_queued_batches_and_cached_keys(
    pipeline: Pipeline,
) -> None:
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    tp, batch = fetched(pipeline, login_failures(2))
    await subjects.handle({tp: batch[:1]})
    await engine.dispatch(engine.epoch, {tp: batch[1:]})
    assert subjects.cache.dirty and not subjects.queue.empty()

    engine.assigned()

    assert subjects.queue.empty() and len(subjects.cache) == 0
    await engine.flush()
    assert journal.of("write") == []


async def test_the_state_of_a_batch_whose_records_failed_is_never_written(
    pipeline: Pipeline,
) -> None:
    """The records a batch made are not durable (the send failed): the batch is not acked
    and is read again after the restart, so its state must not reach the table, or the
    records read again are skipped as applied and what they caused is lost for good."""
    journal, subjects, engine = journal_of(pipeline), subjects_of(pipeline), pipeline.engine
    table = pipeline.tables["subjects"]
    tp, batch = fetched(pipeline, login_failures(BUSINESS.max_failures))
    journal.fail = ConnectionError("broker gone")
    running = asyncio.create_task(subjects.run())
    await engine.dispatch(engine.epoch, {tp: batch})
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(running, 5)  # the runner stops; the worker shuts down
    assert journal.of("ack") == []

    with pytest.raises(EngineFailed):  # the commit the consumer makes as it stops (or the
        await engine.flush()  # next timed one) is refused: the consumer commits nothing

    assert journal.of("write") == [], "a failed batch's state was written to the table"
    assert table.get(b"acme/u-1") is None

    # after the restart the batch is read again, and its lock is derived this time
    journal.fail, journal.entries = None, []
    engine.failed = None  # a new process
    engine.assigned()
    await subjects.handle({tp: batch})
    assert [e.type for e in journal.events(pipeline.lockouts.get_topic_name())] == [
        "lockout.applied"
    ]


async def test_an_event_keyed_otherwise_is_folded_in_its_subjects_partition_without_decoding(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer that keyed its records otherwise put a subject's events in a partition
    whose subjects table does not hold it: ingest forwards them to the by-subject topic
    instead of folding them there, the subjects stage of the right partition folds them
    (taking the events ingest decoded, not decoding them again), with the same result as
    the events read where they belong."""
    events = login_failures(3)
    subjects = subjects_of(pipeline)
    journal, key = journal_of(pipeline), b"acme/u-1"
    home, in_place = fetched(pipeline, events)
    source = pipeline.events.get_topic_name()
    elsewhere = TP(source, (home.partition + 1) % 6)

    misplaced = event_messages(source, events, partition=elsewhere.partition)
    landed = await subjects.handle({elsewhere: misplaced})
    assert landed is not None
    await landed  # kept in the handoff once the broker has them

    assert subjects.stored(key) is None  # not folded in a partition that does not hold it
    assert len(journal.events(pipeline.ingested.get_topic_name())) == len(events)  # sinks
    by_subject = pipeline.rekeyed["subject"].get_topic_name()
    forwarded = produced_as_read(journal, by_subject)  # (the fake broker: one partition)
    assert {m.key for m in forwarded} == {key}
    handoff = pipeline.engine.handoff
    assert len(handoff) == len(events)
    decoded: list[bytes] = []

    def counted(value: bytes, headers: Headers) -> Event:
        decoded.append(value)
        return decode(value, headers)

    monkeypatch.setattr(stages, "decode", counted)
    await subjects.handle({TP(by_subject, 0): forwarded})
    assert decoded == []  # taken, not decoded
    assert all(handoff.take(by_subject, 0, m.offset) is None for m in forwarded)
    taken = lockout_in(subjects.stored(key))
    assert taken.failures == len(events)

    other = folds_pipeline(tmp_path / "other")  # read where they belong, by another worker
    await subjects_of(other).handle({home: in_place})
    assert lockout_in(subjects_of(other).stored(key)) == taken
    assert journal_of(other).of("produce", other.rekeyed["subject"].get_topic_name()) == []


def test_the_handoff_forgets_its_oldest_events_beyond_its_capacity() -> None:
    handoff = Handoff(capacity=3)
    events = login_failures(5)
    handoff.keep([("t", 0, n) for n in range(5)], events)
    assert len(handoff) == 3
    assert handoff.take("t", 0, 1) is None  # forgotten
    assert handoff.take("t", 0, 4) is events[4]
    assert handoff.take("t", 0, 4) is None  # taken once
    handoff.keep([("t", 0, 9)], [None])  # a record with no event (a derived one): nothing
    assert len(handoff) == 2

"""The ledger sink as an engine runner (streams/sinks.py: ``LedgerRunner``) over a real
SQLite ledger, its broker faked by a journal (tests/wiring/fixtures.py): batches, acks,
retries, checkpoints. A sink process against a real broker: tests/integration."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from faust.types import TP

from audit.checkpoints import Checkpoint
from audit.sink import append_durably, checkpoint_event
from audit.verify import ProofRefused, verify_checkpoint
from factorstream.settings import LedgerSettings
from schemas import Event, kafka_key
from schemas.payloads import CheckpointSigned
from streams.app import Pipeline
from streams.engine import EngineFailed, Fetched
from streams.sinks import LedgerRunner
from tests.factories import T0
from tests.support import until
from tests.unit.audit.ledger_support import events
from tests.wiring.fixtures import event_messages, journal_of, running, sink_pipeline

EVERY = 4
"""Entries per count-based checkpoint in these tests."""


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = sink_pipeline(tmp_path, "ledger", ledger=LedgerSettings(checkpoint_every=EVERY))
    yield pipeline
    sink_of(pipeline).ledger.engine.dispose()


def sink_of(pipeline: Pipeline) -> LedgerRunner:
    runner = pipeline.engine.runners["ledger"]
    assert isinstance(runner, LedgerRunner)
    return runner


def checkpoints_topic(pipeline: Pipeline) -> str:
    topic = sink_of(pipeline).checkpoints
    assert topic is not None
    return topic.get_topic_name()


def fetch(pipeline: Pipeline, batch: Sequence[Event], *, first_offset: int = 0) -> Fetched:
    """``batch`` as one fetch of the ingested topic, partition 0."""
    topic = pipeline.ingested.get_topic_name()
    return {TP(topic, 0): event_messages(topic, batch, first_offset=first_offset)}


def acked(pipeline: Pipeline) -> Counter[tuple[str, int | None]]:
    return Counter((e.topic, e.offset) for e in journal_of(pipeline).of("ack"))


def read(fetched: Sequence[Fetched]) -> Counter[tuple[str, int | None]]:
    return Counter((m.topic, m.offset) for f in fetched for ms in f.values() for m in ms)


async def test_every_event_is_appended_once_in_batches_and_checkpoints_published(
    pipeline: Pipeline,
) -> None:
    """Three fetches over the sink's topics (raw and derived), the last one holding two
    events already appended (a producer's retry wrote them twice)."""
    journal, sink, engine = journal_of(pipeline), sink_of(pipeline), pipeline.engine
    ingested, lockouts = pipeline.ingested.get_topic_name(), pipeline.lockouts.get_topic_name()
    batch = events(10)

    def on(topic: str, partition: int, values: list[Event], offset: int) -> Fetched:
        return {TP(topic, partition): event_messages(topic, values, first_offset=offset)}

    fetches: list[Fetched] = [
        on(ingested, 0, batch[:4], 0),
        {**on(ingested, 1, batch[4:7], 0), **on(lockouts, 0, batch[7:8], 0)},
        {**on(ingested, 1, batch[8:], 3), **on(lockouts, 0, [batch[2], batch[7]], 1)},
    ]
    async with running(sink) as task:
        for done in range(1, len(fetches) + 1):  # one at a time: queued ones become one batch
            await engine.dispatch(engine.epoch, fetches[done - 1])
            expected = read(fetches[:done])
            await until(lambda: acked(pipeline) == expected or task.done())  # noqa: B023
        await asyncio.sleep(0.1)  # anything more would show up now
    assert acked(pipeline) == read(fetches)  # each record once

    ledger = sink.ledger
    assert [row.event["id"] for row in ledger.rows()] == [e.id for e in batch]
    assert ledger.size() == 10 and ledger.verify().ok
    published = journal.events(checkpoints_topic(pipeline))
    assert [e.data.tree_size for e in published] == [4, 8]  # type: ignore[attr-defined]
    assert published == [checkpoint_event(c, source=ledger.source) for c in ledger.checkpoints()]
    assert [e.key for e in journal.of("produce")] == [kafka_key(e) for e in published]
    assert ledger.unpublished() == []


async def test_fetches_queued_behind_a_busy_sink_are_appended_as_one_batch_once(
    pipeline: Pipeline,
) -> None:
    """The runner takes every fetch queued behind it as one batch (``take_queued``): each
    record is acknowledged once, every event is appended once, each partition in order."""
    sink, engine = sink_of(pipeline), pipeline.engine
    ingested, lockouts = pipeline.ingested.get_topic_name(), pipeline.lockouts.get_topic_name()
    batch = events(10)
    fetches: list[Fetched] = [
        {TP(ingested, 1): event_messages(ingested, batch[:3], first_offset=0)},
        {TP(lockouts, 0): event_messages(lockouts, batch[3:5], first_offset=0)},
        {TP(ingested, 1): event_messages(ingested, batch[5:], first_offset=3)},
    ]
    async with running(sink) as task:
        for fetched in fetches:  # queued before the runner takes any
            await engine.dispatch(engine.epoch, fetched)
        await until(lambda: acked(pipeline) == read(fetches) or task.done())
        await asyncio.sleep(0.1)
    assert acked(pipeline) == read(fetches)
    assert sink.batches == 1  # one batch, one transaction
    ids = [row.event["id"] for row in sink.ledger.rows()]
    assert sorted(ids) == sorted(e.id for e in batch)
    on_ingested = [i for i in ids if i not in {e.id for e in batch[3:5]}]
    assert on_ingested == [e.id for e in batch[:3] + batch[5:]]  # the partition's order


async def test_offsets_are_acked_only_after_the_batch_is_durable(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, sink, engine = journal_of(pipeline), sink_of(pipeline), pipeline.engine
    ledger = sink.ledger
    entered, release = threading.Event(), threading.Event()
    append = ledger.append

    def slow_append(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return append(*args, **kwargs)

    monkeypatch.setattr(ledger, "append", slow_append)
    fetched = fetch(pipeline, events(3))
    async with running(sink) as task:
        await engine.dispatch(engine.epoch, fetched)
        await until(entered.is_set)
        await asyncio.sleep(0.1)
        assert journal.of("ack") == []  # appending: nothing acked
        assert ledger.size() == 0
        release.set()
        await until(lambda: len(journal.of("ack")) == 3 or task.done())
    assert acked(pipeline) == read([fetched])
    assert ledger.size() == 3  # acked after the commit


async def test_database_errors_are_retried_without_acking(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, sink, engine = journal_of(pipeline), sink_of(pipeline), pipeline.engine
    ledger = sink.ledger
    append, acks_while_failing = ledger.append, list[int]()

    def flaky_append(*args: Any, **kwargs: Any) -> Any:
        if len(acks_while_failing) < 2:
            acks_while_failing.append(len(journal.of("ack")))
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return append(*args, **kwargs)

    monkeypatch.setattr(ledger, "append", flaky_append)
    assert append_durably.__kwdefaults__ is not None
    monkeypatch.setitem(append_durably.__kwdefaults__, "backoff_s", (0.01, 0.02))
    fetched = fetch(pipeline, events(5))
    async with running(sink) as task:
        await engine.dispatch(engine.epoch, fetched)
        await until(lambda: len(journal.of("ack")) == 5 or task.done())
        assert not task.done()  # retried, not failed
    assert acks_while_failing == [0, 0]
    assert acked(pipeline) == read([fetched])
    assert ledger.size() == 5 and ledger.verify().ok


async def test_a_batch_that_cannot_be_appended_is_never_acked(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a database error: the runner stops, the engine commits nothing more, and the
    restarted sink reads the batch again."""
    journal, sink, engine = journal_of(pipeline), sink_of(pipeline), pipeline.engine

    def broken_append(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug, not a database error")

    monkeypatch.setattr(sink.ledger, "append", broken_append)
    async with running(sink) as task:
        await engine.dispatch(engine.epoch, fetch(pipeline, events(3)))
        with pytest.raises(ValueError, match="a bug"):
            await asyncio.wait_for(asyncio.shield(task), 5)
    assert journal.of("ack") == []
    assert isinstance(engine.failed, ValueError)
    with pytest.raises(EngineFailed):  # the commit as the consumer stops is refused
        await engine.flush()
    assert sink.ledger.size() == 0


async def test_a_checkpoint_is_marked_published_only_once_the_broker_has_it(
    pipeline: Pipeline,
) -> None:
    journal, sink = journal_of(pipeline), sink_of(pipeline)
    journal.hold = True  # the broker has not confirmed the record yet
    handling = asyncio.create_task(sink.handle(fetch(pipeline, events(EVERY))))
    await until(lambda: len(journal.of("produce", checkpoints_topic(pipeline))) == 1)
    await asyncio.sleep(0.05)
    assert [c.tree_size for c in sink.ledger.unpublished()] == [EVERY]
    journal.settle()
    await asyncio.wait_for(handling, 5)
    assert sink.ledger.unpublished() == []


async def test_a_checkpoint_is_signed_and_published_when_no_events_arrive(
    pipeline: Pipeline,
) -> None:
    """Fewer entries than ``checkpoint_every``: the timer signs one once the interval
    passed since the first entry, and publishes it."""
    journal, sink = journal_of(pipeline), sink_of(pipeline)
    now = [T0]
    sink.clock = lambda: now[0]
    await sink.handle(fetch(pipeline, events(EVERY - 1)))
    await sink.sign_checkpoints()
    assert journal.of("produce") == []  # the interval has not passed
    now[0] = T0 + sink.ledger.checkpoint_interval + timedelta(seconds=1)
    await sink.sign_checkpoints()
    (published,) = journal.events(checkpoints_topic(pipeline))
    assert isinstance(published.data, CheckpointSigned)
    assert published.data.tree_size == EVERY - 1
    assert sink.ledger.unpublished() == []


async def test_a_published_checkpoint_event_verifies_offline(pipeline: Pipeline) -> None:
    """The record on the checkpoints topic, with nothing but the ledger's public key."""
    journal, sink = journal_of(pipeline), sink_of(pipeline)
    await sink.handle(fetch(pipeline, events(EVERY)))
    (event,) = journal.events(checkpoints_topic(pipeline))
    (checkpoint,) = sink.ledger.checkpoints()
    assert event == checkpoint_event(checkpoint, source=sink.ledger.source)  # deterministic id
    assert event.type == "audit.checkpoint.signed"
    assert isinstance(event.data, CheckpointSigned)
    copy = Checkpoint.from_json({**msgspec.to_builtins(event.data), "time": event.time.isoformat()})
    (key,) = sink.ledger.public_keys().values()
    verify_checkpoint(copy, key)
    assert copy.tree_size == EVERY and copy.root_hash == checkpoint.root_hash
    forged = Checkpoint.from_json({**copy.to_json(), "tree_size": EVERY + 1})
    with pytest.raises(ProofRefused, match="signature"):
        verify_checkpoint(forged, key)

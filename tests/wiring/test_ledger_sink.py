"""The ledger sink agent in Faust's test_context (memory store): batches, acks, retries."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faust
import msgspec
import pytest
import sqlalchemy as sa
from faust.types import AgentT, EventT, TopicT

from audit.checkpoints import Checkpoint
from audit.ledger import Ledger
from audit.sink import attach_ledger_sink, checkpoint_event
from audit.verify import ProofRefused, verify_checkpoint
from schemas import Event, decode, encode, kafka_key
from schemas.payloads import CheckpointSigned
from tests.factories import T0
from tests.support import until
from tests.unit.audit.ledger_support import events, open_test_ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", every=4)
    yield ledger
    ledger.engine.dispose()


def _app() -> tuple[faust.App, TopicT, TopicT]:
    app = faust.App(
        f"wiring-ledger-{uuid.uuid4().hex[:8]}",
        broker="kafka://127.0.0.1:9",  # never contacted: test_context feeds the agent
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    source = app.topic("events-ingested", key_type=bytes, value_type=bytes)
    published = app.topic("mfa.audit.checkpoints", key_type=bytes, value_type=bytes)
    return app, source, published


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Callable[[TopicT], list[Event]]:
    records: list[Event] = []

    def recorder(topic: TopicT) -> list[Event]:
        async def send(*, key: bytes, value: bytes, headers: Any = None, **_: Any) -> None:
            event = decode(value)
            assert key == kafka_key(event)
            records.append(event)

        monkeypatch.setattr(topic, "send", send)
        return records

    return recorder


async def _put_all(agent: AgentT[Any], values: list[Event]) -> list[EventT]:
    return [await agent.put(encode(e), key=kafka_key(e), wait=False) for e in values]


async def test_every_event_is_appended_once_in_batches_and_checkpoints_published(
    ledger: Ledger, sent: Callable[[TopicT], list[Event]]
) -> None:
    app, source, checkpoints = _app()
    published = sent(checkpoints)
    agent = attach_ledger_sink(
        app,
        source=source,
        ledger=ledger,
        batch_size=4,
        batch_timeout_s=0.05,
        checkpoints=checkpoints,
        clock=lambda: T0,
    )
    batch = events(10)
    async with agent.test_context() as running:
        await _put_all(running, [*batch, batch[2], batch[7]])  # two replays
        await until(lambda: ledger.size() == 10 and sum(running.results.values()) == 10)
        await asyncio.sleep(0.2)  # anything more would show up now
    assert ledger.size() == 10
    assert [row.event["id"] for row in ledger.rows()] == [e.id for e in batch]
    assert ledger.verify().ok
    assert [e.data.tree_size for e in published] == [4, 8]  # type: ignore[attr-defined]
    assert published[0] == checkpoint_event(ledger.checkpoints()[0], source=ledger.source)
    assert ledger.unpublished() == []


async def test_offsets_are_acked_only_after_the_batch_is_durable(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, source, _ = _app()
    entered, release = threading.Event(), threading.Event()
    append = ledger.append

    def slow_append(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return append(*args, **kwargs)

    monkeypatch.setattr(ledger, "append", slow_append)
    agent = attach_ledger_sink(
        app, source=source, ledger=ledger, batch_size=3, batch_timeout_s=0.05, clock=lambda: T0
    )
    async with agent.test_context() as running:
        put = await _put_all(running, events(3))
        await until(entered.is_set)
        await asyncio.sleep(0.1)
        assert not any(event.message.acked for event in put)  # appending: nothing acked
        assert ledger.size() == 0
        release.set()
        await until(lambda: all(event.message.acked for event in put))
        assert ledger.size() == 3  # acked after the commit


async def test_database_errors_are_retried_without_acking(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, source, _ = _app()
    append, failures = ledger.append, [0]

    def flaky_append(*args: Any, **kwargs: Any) -> Any:
        if failures[0] < 2:
            failures[0] += 1
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return append(*args, **kwargs)

    monkeypatch.setattr(ledger, "append", flaky_append)
    monkeypatch.setattr("audit.sink.append_durably.__defaults__", ((0.01, 0.02),))
    agent = attach_ledger_sink(
        app, source=source, ledger=ledger, batch_size=5, batch_timeout_s=0.05, clock=lambda: T0
    )
    async with agent.test_context() as running:
        put = await _put_all(running, events(5))
        await until(lambda: all(event.message.acked for event in put))
    assert failures[0] == 2
    assert ledger.size() == 5 and ledger.verify().ok


async def test_a_batch_that_cannot_be_appended_is_never_acked(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Stream.take`` would ack this batch in its ``finally`` as the agent crashes."""
    app, source, _ = _app()
    called = threading.Event()

    def broken_append(*args: Any, **kwargs: Any) -> Any:
        called.set()
        raise ValueError("a bug, not a database error")

    monkeypatch.setattr(ledger, "append", broken_append)
    agent = attach_ledger_sink(
        app, source=source, ledger=ledger, batch_size=3, batch_timeout_s=0.05, clock=lambda: T0
    )
    async with agent.test_context() as running:
        put = await _put_all(running, events(3))
        await until(called.is_set)
        await asyncio.sleep(0.3)
        assert not any(event.message.acked for event in put)


def test_a_published_checkpoint_event_verifies_offline(ledger: Ledger) -> None:
    ledger.append(events(4), now=T0)
    (checkpoint,) = ledger.checkpoints()
    event = decode(encode(checkpoint_event(checkpoint, source=ledger.source)))
    assert event == checkpoint_event(checkpoint, source=ledger.source)  # deterministic id
    assert event.type == "audit.checkpoint.signed"
    assert isinstance(event.data, CheckpointSigned)
    copy = Checkpoint.from_json({**msgspec.to_builtins(event.data), "time": event.time.isoformat()})
    (key,) = ledger.public_keys().values()
    verify_checkpoint(copy, key)
    forged = Checkpoint.from_json({**copy.to_json(), "tree_size": 5})
    with pytest.raises(ProofRefused, match="signature"):
        verify_checkpoint(forged, key)

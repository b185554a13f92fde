"""The outbox on a real SQLite database; the relay's bookkeeping with a scripted producer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from schemas import EventDecodeError, decode
from schemas import payloads as p
from schemas.fields import Client, Factor
from tests.factories import T0, sample_event
from verifiers.publish import (
    Backoff,
    Outbox,
    OutboxRelay,
    OutboxRow,
    RelayIncomplete,
    outbox_engine,
    outbox_events,
    sent_prefix,
)

accounts = sa.Table(
    "accounts",
    outbox_events.metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("failed", sa.Integer),
    extend_existing=True,
)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox(outbox_engine(f"sqlite:///{tmp_path / 'service.db'}"))
    box.create()
    accounts.create(box.engine)
    return box


def test_state_change_and_events_commit_together(outbox: Outbox) -> None:
    with outbox.engine.begin() as connection:
        connection.execute(accounts.insert().values(id="u-1", failed=1))
        outbox.add(connection, [sample_event()])
    assert outbox.pending() == 1


def test_rollback_discards_state_change_and_events_together(outbox: Outbox) -> None:
    with pytest.raises(RuntimeError), outbox.engine.begin() as connection:
        connection.execute(accounts.insert().values(id="u-1", failed=1))
        outbox.add(connection, [sample_event()])
        raise RuntimeError("service failed after writing")
    assert outbox.pending() == 0
    with outbox.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(accounts)).scalar() == 0


def test_an_invalid_event_is_refused_in_the_service_before_commit(outbox: Outbox) -> None:
    wrong = p.VerificationFailed(factor=Factor.TOTP, reason="Bad Reason!", client=Client())
    bad = msgspec.structs.replace(sample_event(), data=wrong)
    with pytest.raises(EventDecodeError) as raised, outbox.engine.begin() as connection:
        outbox.add(connection, [sample_event(), bad])
    assert raised.value.field == "data.reason"
    assert outbox.pending() == 0


def test_the_same_event_cannot_be_staged_twice(outbox: Outbox) -> None:
    event = sample_event()
    with outbox.engine.begin() as connection:
        outbox.add(connection, [event])
    with pytest.raises(sa.exc.IntegrityError), outbox.engine.begin() as connection:
        outbox.add(connection, [event])


def _rows(*keys: str) -> list[OutboxRow]:
    return [OutboxRow(seq, key, b"") for seq, key in enumerate(keys, start=1)]


def test_sent_prefix_stops_each_key_at_its_first_failure() -> None:
    rows = _rows("a", "b", "a", "b", "c", "a")
    failed = {3}  # the second "a"
    assert sent_prefix(rows, lambda row: row.seq not in failed) == [1, 2, 4, 5]
    assert sent_prefix(rows, lambda row: True) == [1, 2, 3, 4, 5, 6]
    assert sent_prefix(rows, lambda row: False) == []


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0)
    assert [backoff.delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


@dataclass
class ScriptedFuture:
    error: Exception | None

    def get(self, timeout: float | None = None) -> Any:
        if self.error:
            raise self.error
        return None


@dataclass
class ScriptedProducer:
    """Acknowledges every send except the ones whose event ids are in ``fail``."""

    fail: set[str] = field(default_factory=set)
    sent: list[tuple[bytes, bytes]] = field(default_factory=list)
    closed: bool = False

    def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> ScriptedFuture:
        event_id = decode(value).id
        self.sent.append((key, value))
        return ScriptedFuture(RuntimeError("broker said no") if event_id in self.fail else None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def _events(count: int, subjects: int) -> list[Any]:
    return [
        sample_event(subject=f"u-{i % subjects}", now=T0 + timedelta(seconds=i))
        for i in range(count)
    ]


def test_relay_keeps_unacknowledged_rows_and_later_rows_of_their_key(outbox: Outbox) -> None:
    events = _events(6, subjects=2)  # keys alternate u-0, u-1
    with outbox.engine.begin() as connection:
        outbox.add(connection, events)
    producer = ScriptedProducer(fail={events[2].id})  # third event, key u-0
    sent_at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    relay = OutboxRelay(outbox, topic="t", producer_factory=lambda: producer, clock=lambda: sent_at)
    with pytest.raises(RelayIncomplete):
        relay.relay_once()
    assert outbox.pending() == 2  # events 2 and 4 (both u-0); u-1 went through
    producer.fail.clear()
    assert relay.relay_once() == 2
    assert outbox.pending() == 0
    resent = [decode(value).id for _, value in producer.sent[6:]]
    assert resent == [events[2].id, events[4].id]  # in order, same ids
    with outbox.engine.connect() as connection:
        stamps = connection.execute(sa.select(outbox_events.c.sent_at)).scalars().all()
    assert {s.replace(tzinfo=UTC) for s in stamps} == {sent_at}


def test_run_backs_off_while_the_producer_cannot_be_created(outbox: Outbox) -> None:
    with outbox.engine.begin() as connection:
        outbox.add(connection, _events(3, subjects=1))
    attempts: list[int] = []
    producer = ScriptedProducer()

    def factory() -> ScriptedProducer:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("no broker")
        return producer

    stop = threading.Event()
    relay = OutboxRelay(
        outbox,
        topic="t",
        producer_factory=factory,
        poll_interval_s=0.01,
        backoff=Backoff(0.01, 0.02),
    )
    worker = threading.Thread(target=relay.run, args=(stop,))
    worker.start()
    for _ in range(500):
        if outbox.pending() == 0:
            break
        stop.wait(0.01)
    stop.set()
    worker.join(timeout=5)
    assert outbox.pending() == 0
    assert len(attempts) == 3
    assert len(producer.sent) == 3
    assert producer.closed  # released on stop


def test_prune_deletes_only_rows_sent_before_the_cutoff(outbox: Outbox) -> None:
    with outbox.engine.begin() as connection:
        outbox.add(connection, _events(4, subjects=2))
    producer = ScriptedProducer()
    relay = OutboxRelay(
        outbox, topic="t", producer_factory=lambda: producer, batch_size=2, clock=lambda: T0
    )
    relay.relay_once()
    assert outbox.prune(sent_before=T0 + timedelta(seconds=1)) == 2
    assert outbox.pending() == 2


def test_the_relay_prunes_published_rows_after_keep_sent_at_most_hourly(outbox: Outbox) -> None:
    """Sent rows keep IP addresses and user agents in clear: they go once the topic has
    had them for ``keep_sent``. Unsent rows are never pruned."""
    now = [T0]
    with outbox.engine.begin() as connection:
        outbox.add(connection, _events(4, subjects=2))
    relay = OutboxRelay(
        outbox,
        topic="t",
        producer_factory=ScriptedProducer,
        batch_size=2,
        keep_sent=timedelta(minutes=10),
        clock=lambda: now[0],
    )
    relay.relay_once()  # two sent at T0, two pending
    now[0] = T0 + timedelta(minutes=5)
    assert relay.prune_if_due() == 0  # not ten minutes old yet
    now[0] = T0 + timedelta(minutes=30)
    assert relay.prune_if_due() == 0  # old enough, but the last pruning was 25 minutes ago
    now[0] = T0 + timedelta(hours=1, minutes=5)
    assert relay.prune_if_due() == 2
    assert outbox.pending() == 2  # the unsent rows stay, whatever their age
    with outbox.engine.connect() as connection:
        count = sa.select(sa.func.count()).select_from(outbox_events)
        assert connection.execute(count).scalar_one() == 2


def test_forgetting_a_subject_deletes_its_published_rows_and_counts_the_rest(
    outbox: Outbox,
) -> None:
    staged = _events(6, subjects=2)
    with outbox.engine.begin() as connection:
        outbox.add(connection, staged)
    relay = OutboxRelay(
        outbox, topic="t", producer_factory=ScriptedProducer, batch_size=4, clock=lambda: T0
    )
    relay.relay_once()  # the first four are sent
    tenant, subject = staged[0].tenant, staged[0].subject
    sent = [e for e in staged[:4] if e.subject == subject]
    unsent = [e for e in staged[4:] if e.subject == subject]
    assert sent and unsent  # both kinds exist for this subject
    assert outbox.forget(tenant, subject) == (len(sent), len(unsent))
    with outbox.engine.connect() as connection:
        rows = connection.execute(
            sa.select(outbox_events.c.event_id, outbox_events.c.sent_at)
        ).all()
    left = {row.event_id for row in rows}
    assert not left & {e.id for e in sent}  # the subject's published rows are gone
    assert {e.id for e in unsent} <= left  # its unsent ones wait for the relay
    others = {e.id for e in staged if e.subject != subject}
    assert others <= left  # nobody else's rows were touched

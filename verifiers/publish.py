"""Publishing events through a transactional outbox.

A service writes its state change and its events in **one** database transaction
(:meth:`Outbox.add` takes the caller's connection), so an event exists if and only if
the change it records committed. A :class:`OutboxRelay` then publishes the outbox rows
to Kafka with an idempotent kafka-python producer (``acks=all``) and marks them sent.

Guarantees:

* nothing is lost: a row is marked sent only after the broker acknowledged it; with the
  broker down the relay backs off and retries, and rows wait in the database;
* order per ``partitionkey`` is kept: rows go out in commit order, and after a failed
  send no later row of the same key is marked sent before it;
* a crash between send and mark re-sends the row with the **same event id**, so
  consumers drop the duplicate (at-least-once delivery, exactly-once effect).

Run one relay per outbox database (on PostgreSQL a second relay waits on the row locks
of the first, so it cannot reorder events).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from schemas import Event, decode, encode, kafka_key
from schemas.codec import structured_headers
from verifiers.kafka_connection import KafkaTarget, as_connection, kafka_python_config

log = logging.getLogger(__name__)

metadata = sa.MetaData()

outbox_events = sa.Table(
    "outbox_events",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("partition_key", sa.String(193), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("value", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_outbox_events_unsent", "sent_at", "seq"),
)


_INSERT = outbox_events.insert()
_IF = "outbox_"
"""The prefix of the outbox row's bind parameters in :meth:`Outbox.add_if`'s statement."""


def _row(event: Event) -> dict[str, Any]:
    """The outbox row of ``event``; validated against its schema first, so a bad event
    fails here, in the service, with :class:`schemas.EventDecodeError` naming the field."""
    value = encode(event)
    decode(value)  # refuse what consumers would refuse, before it is committed
    return {
        "event_id": event.id,
        "partition_key": event.partitionkey,
        "event_type": event.type,
        "value": value,
        "created_at": event.time,
    }


@functools.cache
def _insert_if(change: sa.Update) -> sa.Insert:
    """PostgreSQL: ``change`` and an outbox row that exists only if it changed a row."""
    changed = change.returning(sa.literal_column("1")).cte("changed")
    columns = ["event_id", "partition_key", "event_type", "value", "created_at"]
    row = sa.select(
        *(sa.bindparam(f"{_IF}{name}", type_=outbox_events.c[name].type) for name in columns)
    )
    insert = outbox_events.insert().from_select(columns, row.select_from(changed).limit(1))
    # an INSERT's rowcount is kept only when asked for (SQLAlchemy 2)
    return insert.add_cte(changed).execution_options(preserve_rowcount=True)


def outbox_engine(url: str) -> sa.Engine:
    """An engine for an outbox database; SQLite gets WAL so the relay never blocks writers."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


class Outbox:
    """The outbox table of one service database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self) -> None:
        """Create the outbox table if it does not exist."""
        metadata.create_all(self.engine, tables=[outbox_events])

    def add(self, connection: sa.Connection, events: Iterable[Event]) -> int:
        """Stage ``events`` in the caller's transaction; they publish once it commits.

        Each event is validated against its schema first (:func:`_row`).
        """
        rows = [_row(event) for event in events]
        if len(rows) == 1:  # the common case: one plain statement, no executemany pipeline
            connection.execute(_INSERT, rows[0])
        elif rows:
            connection.execute(_INSERT, rows)
        return len(rows)

    def add_if(
        self,
        connection: sa.Connection,
        change: sa.Update,
        params: Mapping[str, Any],
        event: Callable[[], Event],
    ) -> Event | None:
        """Run ``change`` (an UPDATE of at most one row, guarded by its WHERE) and stage
        the ``event()`` only if it changed the row; the event, or ``None``.

        PostgreSQL does both in one statement: ``WITH changed AS (UPDATE … RETURNING 1)
        INSERT INTO outbox_events … SELECT … FROM changed`` (the event is built first, so
        a refused change has drawn an event id it does not use). SQLite has no
        data-modifying WITH, and no round trip to save: the change, then the insert.
        """
        if connection.dialect.name != "postgresql":
            if connection.execute(change, params).rowcount == 0:
                return None
            staged = event()
            self.add(connection, [staged])
            return staged
        staged = event()
        values = {f"{_IF}{name}": value for name, value in _row(staged).items()}
        inserted = connection.execute(_insert_if(change), {**params, **values}).rowcount
        return staged if inserted == 1 else None

    def pending(self) -> int:
        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).where(outbox_events.c.sent_at.is_(None))
            return int(connection.execute(query).scalar_one())

    def prune(self, *, sent_before: datetime) -> int:
        """Delete rows that were published before ``sent_before``."""
        with self.engine.begin() as connection:
            result = connection.execute(
                outbox_events.delete().where(outbox_events.c.sent_at < sent_before)
            )
            return result.rowcount

    def sent_range(self) -> tuple[datetime | None, datetime | None]:
        """When the oldest and the newest row still held were published (``None``: none
        held); what retention (:meth:`prune`) is measured against."""
        column = outbox_events.c.sent_at
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
        oldest, newest = (
            None if value is None else value.replace(tzinfo=UTC) if value.tzinfo is None
            else value.astimezone(UTC)
            for value in row
        )  # fmt: skip
        return oldest, newest

    def forget(self, tenant: str, subject: str) -> tuple[int, int]:
        """Delete the subject's published rows (an erasure; they are on the topic already).
        Returns (deleted, still unsent): an unsent row keeps its data until it is relayed,
        since deleting it would lose the event."""
        key = f"{tenant}/{subject}"
        with self.engine.begin() as connection:
            deleted = connection.execute(
                outbox_events.delete().where(
                    outbox_events.c.partition_key == key, outbox_events.c.sent_at.is_not(None)
                )
            ).rowcount
            unsent = connection.execute(
                sa.select(sa.func.count()).where(
                    outbox_events.c.partition_key == key, outbox_events.c.sent_at.is_(None)
                )
            ).scalar_one()
        return deleted, int(unsent)


class SendFuture(Protocol):
    def get(self, timeout: float | None = None) -> Any: ...


class Producer(Protocol):
    """The part of ``kafka.KafkaProducer`` the relay uses."""

    def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between failed relay rounds."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.max_s, self.initial_s * 2 ** (failures - 1))


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    partition_key: str
    value: bytes


def sent_prefix(rows: Sequence[OutboxRow], delivered: Callable[[OutboxRow], bool]) -> list[int]:
    """The rows that may be marked sent: per key, those before the key's first failure.

    A row delivered after an undelivered row of the same key stays unsent, so the next
    round sends both again in order (the duplicate carries the same event id).
    """
    blocked: set[str] = set()
    done = []
    for row in rows:
        if row.partition_key in blocked:
            continue
        if delivered(row):
            done.append(row.seq)
        else:
            blocked.add(row.partition_key)
    return done


class OutboxRelay:
    """Publishes outbox rows to a Kafka topic until stopped."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        topic: str,
        producer_factory: Callable[[], Producer],
        batch_size: int = 2000,
        poll_interval_s: float = 0.2,
        backoff: Backoff | None = None,
        send_timeout_s: float = 30.0,
        keep_sent: timedelta | None = None,
        prune_every: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``keep_sent``: published rows older than this are deleted (every
        ``prune_every`` while relaying): they hold personal data (IP addresses, user
        agents) that the topic, the ledger and the lake already have. ``None`` keeps them."""
        self.outbox = outbox
        self.topic = topic
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.backoff = backoff or Backoff()
        self.send_timeout_s = send_timeout_s
        self.clock = clock
        self.keep_sent, self.prune_every = keep_sent, prune_every
        self._pruned_at: datetime | None = None
        self._producer: Producer | None = None
        self.published = 0
        self.pruned = 0
        self.on_round: Callable[[int, float, bool], None] | None = None
        """Told each round's rows published, its seconds and whether it failed (metrics)."""
        self.on_prune: Callable[[int], None] | None = None
        """Told the rows each pruning deleted (metrics)."""

    def prune_if_due(self) -> int:
        """Delete the rows published more than ``keep_sent`` ago, at most every
        ``prune_every``; the number deleted."""
        now = self.clock()
        if self.keep_sent is None or (
            self._pruned_at is not None and now - self._pruned_at < self.prune_every
        ):
            return 0
        self._pruned_at = now
        deleted = self.outbox.prune(sent_before=now - self.keep_sent)
        self.pruned += deleted
        log.info(
            "outbox retention: pruned %d rows published before %s", deleted, now - self.keep_sent
        )
        if self.on_prune is not None:
            self.on_prune(deleted)
        return deleted

    def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were marked sent.

        Raises the producer's error when the broker cannot be reached (nothing marked).
        """
        table = outbox_events
        with self.outbox.engine.begin() as connection:
            query = (
                sa.select(table.c.seq, table.c.partition_key, table.c.value)
                .where(table.c.sent_at.is_(None))
                .order_by(table.c.seq)
                .limit(self.batch_size)
                .with_for_update()
            )
            rows = [OutboxRow(*row) for row in connection.execute(query)]
            if not rows:
                return 0
            delivered = self._send(rows)
            done = sent_prefix(rows, lambda row: row.seq in delivered)
            if done:
                connection.execute(
                    table.update().where(table.c.seq.in_(done)).values(sent_at=self.clock())
                )
        self.published += len(done)
        if len(done) < len(rows):
            raise RelayIncomplete(f"{len(rows) - len(done)} of {len(rows)} rows not acknowledged")
        return len(done)

    def _send(self, rows: Sequence[OutboxRow]) -> set[int]:
        producer = self._producer or self.producer_factory()
        self._producer = producer
        headers = structured_headers()
        futures = [
            (
                row.seq,
                producer.send(
                    self.topic, value=row.value, key=row.partition_key.encode(), headers=headers
                ),
            )
            for row in rows
        ]
        producer.flush(timeout=self.send_timeout_s)
        delivered = set()
        for seq, future in futures:
            try:
                future.get(timeout=self.send_timeout_s)
            except Exception as exc:  # noqa: BLE001 - any send failure leaves the row unsent
                log.warning("outbox row %s not acknowledged: %s", seq, exc)
            else:
                delivered.add(seq)
        return delivered

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; back off while the broker is unreachable."""
        failures = 0
        while not stop.is_set():
            started = time.perf_counter()
            try:
                count = self.relay_once()
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever the broker does
                if self.on_round is not None:
                    self.on_round(0, time.perf_counter() - started, True)
                failures += 1
                delay = self.backoff.delay(failures)
                log.warning("relay round failed (%s); retrying in %.1fs", exc, delay)
                self._reset_producer()
                stop.wait(delay)
                continue
            if self.on_round is not None:
                self.on_round(count, time.perf_counter() - started, False)
            failures = 0
            if count == 0:
                self.prune_if_due()
                stop.wait(self.poll_interval_s)
        self._reset_producer()

    @contextlib.contextmanager
    def in_background(self, *, drain_timeout_s: float = 300.0) -> Iterator[OutboxRelay]:
        """Relay in a thread while the block runs; on leaving, stop it and publish what
        is left (:meth:`drain`)."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.drain(timeout_s=drain_timeout_s)

    def drain(self, *, timeout_s: float) -> None:
        """Relay until the outbox is empty (for tests, benchmarks and shutdown)."""
        stop = threading.Event()
        deadline = threading.Timer(timeout_s, stop.set)
        deadline.start()
        try:
            failures = 0
            while not stop.is_set():
                try:
                    if self.relay_once() == 0:
                        return
                    failures = 0
                except Exception:  # noqa: BLE001
                    failures += 1
                    self._reset_producer()
                    stop.wait(self.backoff.delay(failures))
            raise TimeoutError(f"outbox not drained within {timeout_s}s")
        finally:
            deadline.cancel()

    def _reset_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - closing a broken producer may fail
                log.debug("closing producer failed: %s", exc)
            self._producer = None


class RelayIncomplete(RuntimeError):
    """Some rows of a batch were not acknowledged; they stay in the outbox."""


def kafka_producer_factory(
    kafka: KafkaTarget, *, linger_ms: int = 20, **overrides: Any
) -> Callable[[], Producer]:
    """An idempotent, ``acks=all`` kafka-python producer to ``kafka`` (a connection with
    its SASL/TLS settings, or a bootstrap string: PLAINTEXT), created on first use."""

    def create() -> Producer:
        from kafka import KafkaProducer

        config: dict[str, Any] = {
            **kafka_python_config(kafka),
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "batch_size": 256 * 1024,
            "max_in_flight_requests_per_connection": 5,
            "request_timeout_ms": 10_000,
            "delivery_timeout_ms": 30_000,
            "max_block_ms": 10_000,
            # the relay does its own backoff between rounds; inside one round kafka-python
            # must not wait up to 30 s between reconnects, or recovery lags the broker
            "reconnect_backoff_max_ms": 1_000,
            "bootstrap_timeout_ms": 5_000,
            "client_id": "factorstream-outbox-relay",
        }
        config.update(overrides)
        producer: Producer = KafkaProducer(**config)
        return producer

    return create


def publish_now(
    events: Sequence[Event], *, kafka: KafkaTarget, topic: str, timeout_s: float = 30.0
) -> None:
    """Publish ``events`` straight to ``topic`` and wait until the broker has each one
    (for the few events a command records itself, e.g. ``audit erase``; services use the
    outbox). Raises on the first that is not acknowledged within ``timeout_s``."""
    from kafka.errors import KafkaError

    where = as_connection(kafka).describe()
    try:
        producer = kafka_producer_factory(kafka, linger_ms=0)()
    except KafkaError as error:
        raise PublishFailed(f"no broker at {where}: {error}") from error
    try:
        headers = structured_headers()
        futures = [
            producer.send(topic, value=encode(e), key=kafka_key(e), headers=headers) for e in events
        ]
        for future in futures:
            future.get(timeout=timeout_s)
    except KafkaError as error:
        raise PublishFailed(f"{topic} on {where}: {error}") from error
    finally:
        producer.close(timeout=5)


class PublishFailed(RuntimeError):
    """An event was not acknowledged by the broker."""

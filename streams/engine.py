"""The stream engine: whole batches from Faust's consumer to the stages, and back to Kafka.

The engine takes the records of its source topics out of the worker's consumer
(``streams/consumer.py``) as whole fetched batches, one partition at a time, instead of
Faust's record-at-a-time agents, and runs them through a :class:`Runner` per stage (the
:class:`SubjectsRunner` runs ingest in front of the subjects stage, in the same batch): a
stage (``streams/stages.py``) processes the batch, its records are handed to the producer
and the runner goes on with its next batch; once the broker has them (``acks=all``) the
batch is acknowledged to Faust's consumer, batches in fetch order. Each offset commit
runs inside :meth:`Engine.committing`, which holds every runner still while it waits for
their records and writes the keys its batches changed to its table, so what the records
before a committed offset caused is durable. On a rebalance unstarted batches are dropped
and every cached key forgotten. Each step, and what survives a crash at each point:
docs/stream-engine.md#one-batch-step-by-step.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import io
import itertools
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import faust
import msgspec
from faust.types import TP, Message, TableT, TopicT

from schemas import Event
from streams.delivery import StallWatch
from streams.faust_fence import store_apply, table_context
from streams.ingest import DLQ_HEADER_PREFIX, record_headers
from streams.produce import BatchProducer, Outgoing
from streams.stages import (
    DLQ,
    Emit,
    Ingest,
    JsonState,
    KeyedStage,
    Record,
    StageOutput,
    StateCache,
)

if TYPE_CHECKING:  # prometheus_client is the optional extra ``metrics``
    from streams.metrics import StreamMetrics

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder().encode
"""Stored forms as JSON: what the tables' ``json`` value serializer reads back."""

QUEUED_BATCHES = 4
"""Fetched batches a runner holds before the consumer waits (back-pressure)."""
UNACKED_BATCHES = 4
"""Processed batches whose produced records a runner lets the broker take while it goes on
with the next batch; it waits for the oldest beyond these."""

Fetched = dict[TP, list[Message]]
"""One fetch's records of a runner's source topics, by partition, each in offset order."""
Batch = tuple[int, Fetched]
"""A batch as queued: the engine's epoch when it was fetched, and its records."""


class Runner:
    """The batches of its source topics, one at a time (concurrency 1), in fetch order."""

    def __init__(
        self,
        app: faust.App,
        *,
        name: str,
        source: TopicT,
        topics: Mapping[str, str] | None = None,
    ) -> None:
        self.app, self.name, self.source, self.topics = app, name, source, topics or {}
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=QUEUED_BATCHES)
        self.lock = asyncio.Lock()
        self.engine: Engine | None = None
        self.batches = 0
        self.records = 0
        self.unacked: collections.deque[tuple[asyncio.Future[Any] | None, Fetched, float]] = (
            collections.deque()
        )
        """Batches processed whose records may not have landed yet, in fetch order: the
        future of their produced records (``None``: nothing produced), the batch and when
        it started."""
        self.task: asyncio.Task[Any] | None = None
        """The task running :meth:`run` (its stack is logged when it seems stuck)."""

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(self.source.topics)

    async def run(self) -> None:
        engine = self.engine
        if engine is None:
            raise RuntimeError(f"{self.name}: run by no engine (Engine.add starts runners)")
        self.task = asyncio.current_task()
        while True:
            epoch, fetched = await self.queue.get()
            async with self.lock:
                if epoch != engine.epoch:
                    continue  # fetched before a rebalance: read again from the committed offset
                fetched = self.take_queued(fetched)
                started = time.perf_counter()
                try:
                    landed = await self.handle(fetched)
                    self.unacked.append((landed, fetched, started))
                    await self.settle(keep=UNACKED_BATCHES)
                    if self.queue.empty():  # idle: acknowledge everything and write the
                        await self.settle()  # state now, a commit has less to do
                        if engine.failed is None:
                            await self.write_state()
                except BaseException as error:  # cancelled too: its state may be half done
                    engine.fail(self, error)
                    raise

    async def settle(self, keep: int = 0) -> None:
        """Acknowledge to Faust's consumer, in fetch order, the batches whose produced
        records the broker has: every one whose records landed already, and, waiting for
        them, as many more as leave at most ``keep`` unacknowledged. The caller holds this
        runner's lock. A failed send raises here (and again at each call: the batch stays
        unacknowledged)."""
        unacked, consumer, engine = self.unacked, self.app.consumer, self.engine
        while unacked and (len(unacked) > keep or unacked[0][0] is None or unacked[0][0].done()):
            landed, fetched, started = unacked[0]
            if landed is not None:
                await asyncio.shield(landed)  # a cancelled caller leaves it to the next
            unacked.popleft()
            for messages in fetched.values():
                for message in messages:
                    message.ack(consumer)  # acked once every runner of its topic did
                self.records += len(messages)
            self.batches += 1
            if engine is not None and engine.metrics is not None:
                self.count(engine.metrics, fetched, started)

    def count(self, metrics: StreamMetrics, fetched: Fetched, started: float) -> None:
        counts: dict[str, int] = {}
        for tp, messages in fetched.items():
            counts[tp.topic] = counts.get(tp.topic, 0) + len(messages)
        stamps = [messages[0].timestamp for messages in fetched.values() if messages]
        metrics.batch_done(self.name, counts, started, min(stamps) if stamps else None)

    def take_queued(self, fetched: Fetched) -> Fetched:
        """``fetched`` and every batch queued behind it of the same epoch, as one batch:
        when the runner is behind, its batches grow and one produce round trip (the
        broker's acks) serves them all, instead of each small fetch waiting in the queue
        for the round trips of those before it (seen: ~120 records a batch, three queued,
        half a second between an event's arrival and its processing at 2,000 events/s)."""
        if self.queue.empty():
            return fetched
        engine = self.engine
        merged = dict(fetched)
        while not self.queue.empty():
            epoch, more = self.queue.get_nowait()
            if engine is None or epoch != engine.epoch:
                continue  # fetched before a rebalance: read again from the committed offset
            for tp, messages in more.items():  # each partition's records stay in order
                merged[tp] = merged[tp] + messages if tp in merged else messages
        return merged

    def drop_queued(self) -> int:
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            dropped += 1
        return dropped

    async def handle(self, fetched: Fetched) -> asyncio.Future[Any] | None:
        """Process one batch; the future of the records it produced (``None``: nothing
        left to wait for)."""
        raise NotImplementedError

    async def write_state(self) -> int:
        """Write what the batches changed since the last call (stateless: nothing); the
        caller holds this runner's lock and has settled every batch."""
        return 0

    def forget(self) -> None:
        """Forget cached state (after a rebalance)."""

    async def produce(self, emits: Sequence[Emit]) -> asyncio.Future[Any] | None:
        """Hand every record to the producer; the future that is done once the broker has
        them all (``None``: nothing to produce). A record produced to a topic this worker
        reads is kept in the :class:`Handoff` as soon as it landed."""
        if not emits:
            return None
        if self.engine is None:
            raise RuntimeError(f"{self.name}: produces through an engine (Engine.add)")
        topics, engine = self.topics, self.engine
        landed = await engine.producer.enqueue(
            Outgoing(topics[e.role], None, e.key, e.value, e.headers) for e in emits
        )
        wants = engine.wants
        events = [e.event if wants(topics[e.role]) else None for e in emits]
        if any(event is not None for event in events):
            handoff = engine.handoff

            def keep(placed: asyncio.Future[list[tuple[str, int, int]]]) -> None:
                if not placed.cancelled() and placed.exception() is None:
                    handoff.keep(placed.result(), events)

            landed.add_done_callback(keep)
        if engine.metrics is not None:
            engine.metrics.produced(
                [topics[e.role] for e in emits],
                [_dead_letter_field(e) for e in emits if e.role == DLQ],
            )
        return landed


_DLQ_FIELD = DLQ_HEADER_PREFIX + "field"


def _dead_letter_field(emit: Emit) -> str:
    for name, value in emit.headers:
        if name == _DLQ_FIELD and value is not None:
            return value.decode(errors="replace")
    return "unknown"


class Handoff:
    """The decoded events of records this worker produced to its own re-keyed topics, by
    topic, partition and offset: a runner that reads such a record back (its partition is
    most often assigned here too) takes the event instead of decoding the value again. The
    value was encoded from that very event, so both give the same event (the replay, which
    never encodes, relies on it as well). Bounded: the oldest are forgotten (a record read
    elsewhere, or after a restart, is decoded): a few fetches' worth, as the records come
    back within a few batches."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._events: dict[tuple[str, int, int], Event] = {}

    def keep(self, placed: Sequence[tuple[str, int, int]], events: Sequence[Event | None]) -> None:
        found = self._events
        for position, event in zip(placed, events, strict=True):
            if event is not None:
                found[position] = event
        excess = len(found) - self.capacity
        if excess > 0:
            for position in list(itertools.islice(found, excess)):
                del found[position]

    def take(self, topic: str, partition: int, offset: int) -> Event | None:
        return self._events.pop((topic, partition, offset), None)

    def __len__(self) -> int:
        return len(self._events)


def records_of(messages: Sequence[Message], handoff: Handoff | None = None) -> list[Record]:
    take = handoff.take if handoff is not None and len(handoff) else None
    return [
        Record(
            m.topic,
            m.partition,
            m.offset,
            int(m.timestamp * 1000),
            m.key,
            m.value,
            record_headers(m.headers),
            None if take is None else take(m.topic, m.partition, m.offset),
        )
        for m in messages
    ]


class KeyedRunner(Runner):
    """A keyed stage over its table, with a write-back cache of live state."""

    def __init__(
        self,
        app: faust.App,
        *,
        stage: KeyedStage,
        table: TableT[bytes, JsonState],
        capacity: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.stage, self.table = stage, table
        self.cache: StateCache = stage.cache(self._load, capacity=capacity)
        self.duplicates = 0
        self.skipped = 0
        self.writes = 0

    def _load(self, key: bytes) -> JsonState | None:
        found: JsonState | None = self.table.get(key)
        return found

    def stage_records(self, tp: TP, messages: Sequence[Message], emits: list[Emit]) -> list[Record]:
        """The records of one partition's batch as the stage reads them (records the
        runner must produce for them go to ``emits``)."""
        return records_of(messages, self.engine.handoff if self.engine else None)

    async def handle(self, fetched: Fetched) -> asyncio.Future[Any] | None:
        emits: list[Emit] = []
        for tp, messages in fetched.items():
            with table_context(self.app, self.source_names[0], tp.partition):
                self.cache.partition = tp.partition
                records = self.stage_records(tp, messages, emits)
                out: StageOutput = self.stage.process(records, self.cache)
            self.duplicates += out.duplicates
            self.skipped += out.skipped
            emits += out.emits
            metrics = None if self.engine is None else self.engine.metrics
            if metrics is not None:
                for event in out.derived:
                    metrics.derived.labels(self.name, event.type).inc()
            await asyncio.sleep(0)  # let the API and the heartbeats in between partitions
        return await self.produce(emits)

    async def write_state(self) -> int:
        """Each changed key into the local store and, as one record batch per partition,
        into the changelog; then the store remembers the changelog offset it holds (what
        ``table[key] = value`` does a record at a time)."""
        writes = self.cache.flush()
        if not writes or self.engine is None:
            return 0
        table = self.table
        changelog = table.changelog_topic.get_topic_name()
        records = [
            Outgoing(changelog, partition, key, None if value is None else _json(value))
            for key, partition, value in writes
        ]
        placed = await self.engine.producer.send(records)
        # the local store after the changelog has them, as Faust's recovery writes it (one
        # batch per partition, and the changelog offset it now holds)
        store_apply(
            table.data,
            [
                (TP(topic, partition), offset, record.key, value, record.value)
                for (topic, partition, offset), record, (_, _, value) in zip(
                    placed, records, writes, strict=True
                )
            ],
        )
        self.writes += len(writes)
        return len(writes)

    def forget(self) -> None:
        self.cache.clear()

    def stored(self, key: bytes) -> JsonState | None:
        """A key's freshest stored form: the live record if cached, else the table's."""
        return self.cache.peek(key) or self.table.get(key)


class SubjectsRunner(KeyedRunner):
    """The subjects stage with ingest in front, reading the events topic and the
    :data:`~streams.stages.BY_SUBJECT` topic.

    A batch of the events topic is ingested (decode, dead-letter, enrich, forward to the
    ingested topic for the sinks) and the events whose subject lives in the batch's own
    partition (all of them when producers key by ``partitionkey``) are folded in the same
    batch: no hop through Kafka between ingest and the folds. Every table and topic has the
    events topic's partition count and Faust assigns a partition number of all of them to
    one worker, so that partition of the subjects table is here. An event keyed otherwise
    is forwarded to the by-subject topic and folded where it comes out."""

    def __init__(self, app: faust.App, *, ingest: Ingest, events: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.ingest, self.events = ingest, events
        self.dead_lettered = 0

    def stage_records(self, tp: TP, messages: Sequence[Message], emits: list[Emit]) -> list[Record]:
        if tp.topic != self.events:
            return super().stage_records(tp, messages, emits)
        out = self.ingest.process(records_of(messages))
        self.dead_lettered += out.dead_lettered
        emits += out.emits
        return out.local


def tune_collector() -> None:
    """Python's cyclic garbage collector, set for a worker process (call once, before it
    starts). By default it runs every 700 allocations and often walks the whole cache of
    live state: about a third of the worker's CPU in ``bench pipeline``. What exists at
    start-up (modules, the app) is frozen out of its walks; it runs every 50,000
    allocations, and a full walk comes after 500 young ones (and, as always, only once
    the heap grew by a quarter). The engine makes few reference cycles; most of its
    garbage goes at once, by reference counting."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 10)


class EngineFailed(RuntimeError):
    """A batch failed: the engine writes and commits nothing more until the restart."""


class Engine:
    """The runners of one worker, fed by its consumer (``streams/consumer.py``)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.runners: dict[str, Runner] = {}
        """By runner name."""
        self.by_topic: dict[str, list[Runner]] = {}
        self.producer = BatchProducer(app)
        self.handoff = Handoff()
        self.failed: BaseException | None = None
        """Set when a batch failed: from then on nothing is written or committed."""
        self.epoch = 0
        """Counts rebalances: a batch fetched in an earlier epoch is dropped."""
        self.metrics: StreamMetrics | None = None
        """Counts batches, records and derived events when set (``streams/metrics.py``)."""
        self._busy: StallWatch | None = None
        self._committing: asyncio.Task[Any] | None = None

    def add(self, runner: Runner) -> Runner:
        if runner.name in self.runners:
            raise ValueError(f"{runner.name}: runner names must be unique")
        for name in runner.source_names:
            self.by_topic.setdefault(name, []).append(runner)
        runner.engine = self
        self.runners[runner.name] = runner
        self.app.topics.add(runner.source)  # subscribed, with acks, like an agent's topic
        self.app.task(runner.run)
        return runner

    def wants(self, topic: str) -> bool:
        return topic in self.by_topic

    @property
    def idle(self) -> bool:
        """No batch queued, none being processed and none waiting for its records."""
        return all(
            r.queue.empty() and not r.lock.locked() and not r.unacked for r in self.runners.values()
        )

    def stuck(self, now: float, after_s: float) -> list[str]:
        """Where each runner that has held its lock on one batch for ``after_s`` seconds
        waits (its task's stack; a commit holds every lock, so then it is the commit's),
        for the log, once per ``after_s``: a worker that stops must say where."""
        if self._busy is None or self._busy.after_s != after_s:
            self._busy = StallWatch(after_s)
        found = []
        for runner in self.runners.values():
            if not self._busy.stuck(runner.name, runner.batches, runner.lock.locked(), now):
                continue
            self._busy.restart(runner.name, runner.batches, now)  # said: again after as long
            holder = self._committing if self._committing is not None else runner.task
            where = io.StringIO()
            if holder is not None:
                holder.print_stack(file=where)
            what = "a commit" if self._committing is not None else "its batch"
            found.append(
                f"{runner.name}: held by {what} for {after_s:.0f} s or more "
                f"({runner.queue.qsize()} batches queued), waiting at:\n{where.getvalue()}"
            )
        return found

    async def dispatch(self, epoch: int, fetched: Fetched) -> None:
        """Queue one fetch's records, a batch per runner (waits while a runner is behind)."""
        if epoch != self.epoch:
            return
        batches: dict[str, Fetched] = {}
        for tp, messages in fetched.items():
            runners = self.by_topic[tp.topic]
            if len(runners) > 1:
                for message in messages:
                    message.incref(len(runners))  # acked when the last runner acks it
            for runner in runners:
                batches.setdefault(runner.name, {})[tp] = messages
        for name, batch in batches.items():
            await self.runners[name].queue.put((epoch, batch))

    async def revoke(self) -> None:
        """Partitions are being revoked: drop what has not started, wait for what has."""
        self.epoch += 1
        dropped = sum(runner.drop_queued() for runner in self.runners.values())
        if dropped:
            log.info("engine: dropped %d fetched batches at a rebalance", dropped)
        for runner in self.runners.values():
            async with runner.lock:
                try:
                    await runner.settle()
                except Exception as error:  # the records of a batch it processed failed
                    self.fail(runner, error)

    def assigned(self) -> None:
        """A new assignment: every cached key may have changed elsewhere."""
        self.epoch += 1
        for runner in self.runners.values():
            runner.drop_queued()
            runner.forget()

    def fail(self, runner: Runner, error: BaseException) -> None:
        """A batch of ``runner`` failed (or was cancelled) after it may have changed cached
        state: no state is written and no offset committed any more. The worker stops (the
        error crashes the app); a restart reads again from the last commit, whose state is
        whole."""
        if self.failed is None:
            self.failed = error
            log.error(
                "engine: %s failed a batch (%r); nothing more is committed", runner.name, error
            )

    @asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        """Hold every runner still, write the state their batches changed, and keep them
        still until the block ends, in which the consumer fixes the offsets it commits
        (``streams/consumer.py``): an offset is never committed for a record whose state
        is not written (a batch acknowledged between a runner's write and that moment
        would be)."""
        if self.failed is not None:
            raise EngineFailed(f"a batch failed ({self.failed!r}): no commit") from self.failed
        async with AsyncExitStack() as stack:
            for runner in self.runners.values():
                await stack.enter_async_context(runner.lock)  # after its batch in flight
            if self.failed is not None:  # failed while we waited for its lock
                raise EngineFailed(f"a batch failed ({self.failed!r}): no commit")
            self._committing = asyncio.current_task()
            stack.callback(setattr, self, "_committing", None)
            for runner in self.runners.values():  # the records of every batch processed
                try:
                    await runner.settle()
                except Exception as error:
                    self.fail(runner, error)
                    raise EngineFailed(f"a batch failed ({error!r}): no commit") from error
            written = {runner.name: await runner.write_state() for runner in self.runners.values()}
            log.debug("engine: state written before a commit: %s", written)
            yield

    async def flush(self) -> None:
        """Write the state every batch so far changed (at a rebalance, before Faust's
        revoke commits)."""
        async with self.committing():
            pass

    def keyed(self, name: str) -> KeyedRunner:
        for runner in self.runners.values():
            if isinstance(runner, KeyedRunner) and runner.stage.name == name:
                return runner
        raise KeyError(name)

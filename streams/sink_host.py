"""A sink in a process of its own: a plain Kafka consumer group, without Faust.

``factorstream sink ledger|lake`` runs one sink (``streams/sinks.py``) over every event
(the ingested, lockouts and anomalies topics) in consumer group ``<app_id>-<sink>``:
fetch at most ``max_records``, ``sink.write`` them (durable when it returns), then commit
the offsets after the records written. Nothing is committed before the sink has the
batch, and both sinks take events idempotently by id, so every event is held once.
Timers run between batches. Progress is kept in a :class:`SinkProgress` its probes read
from their own thread; each batch written is reported to ``on_batch``. Rebalances, and
why not the worker's engine: docs/stream-engine.md#a-sink-in-a-process-of-its-own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams.noise import RepeatLimit
from verifiers.kafka_connection import KafkaTarget, aiokafka_config

log = logging.getLogger(__name__)
errors = logging.getLogger(f"{__name__}.errors")
errors.addFilter(RepeatLimit())  # with its broker gone, every fetch fails

Tick = Callable[[], Awaitable[None]]
BatchDone = Callable[[dict[str, int], float, float | None], None]
"""A batch written and committed: records by topic, when the batch started
(:func:`time.perf_counter`), its oldest record's Kafka timestamp (Unix seconds)."""
OFFSETS_EVERY_S = 1.0
"""How often the partitions' offsets are noted for the probes (between batches)."""


class BatchSink(Protocol):
    async def write(self, values: list[bytes]) -> None: ...

    def forget(self) -> None: ...


@dataclass
class Timer:
    """``action`` every ``every_s`` seconds, between batches."""

    every_s: float
    action: Tick
    due: float = 0.0


@dataclass
class SinkProgress:
    """What a sink process is doing, as its probes see it: written by the loop, read from
    the probes' thread (whole values replaced, never mutated in place)."""

    assigned: frozenset[TopicPartition] = frozenset()
    rebalancing: bool = True
    offsets: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    """(log end offset, committed offset) of each assigned partition fetched from."""

    @property
    def partitions_assigned(self) -> bool:
        return bool(self.assigned) and not self.rebalancing

    def partition_offsets(self) -> Iterator[tuple[str, int, int, int]]:
        """(topic, partition, log end offset, committed offset) of each assigned partition
        (``streams.metrics.PartitionOffsets``)."""
        offsets, assigned = self.offsets, self.assigned
        for tp in sorted(offsets):
            if tp in assigned:
                log_end, committed = offsets[tp]
                yield tp.topic, tp.partition, log_end, committed


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sink: BatchSink, progress: SinkProgress) -> None:
        self.sink, self.progress = sink, progress

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to write: a batch is committed right after it is written."""
        self.progress.rebalancing = True

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.sink.forget()
        self.progress.assigned = frozenset(assigned)
        self.progress.rebalancing = False


async def run_sink(
    sink: BatchSink,
    *,
    kafka: KafkaTarget,
    group: str,
    topics: Sequence[str],
    max_records: int,
    stop: asyncio.Event,
    timers: Sequence[Timer] = (),
    grace_s: float = 10.0,
    session_timeout_s: float = 15.0,
    progress: SinkProgress | None = None,
    on_batch: BatchDone | None = None,
) -> None:
    """Run ``sink`` over ``topics`` in consumer ``group`` until ``stop`` is set: the batch
    in hand is written and committed first, unless its write takes ``grace_s`` more (a
    database that is down, retried with backoff): then it is left uncommitted.
    ``progress`` is kept up to date; ``on_batch`` hears of each batch committed."""
    progress = progress if progress is not None else SinkProgress()
    consumer = AIOKafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        session_timeout_ms=int(session_timeout_s * 1000),
        heartbeat_interval_ms=int(session_timeout_s * 1000 / 3),
        **aiokafka_config(kafka),
    )
    consumer.subscribe(list(topics), listener=_Rebalance(sink, progress))
    await consumer.start()
    noted = 0.0
    try:
        while not stop.is_set():
            await _run_due(timers)
            try:
                fetched = await consumer.getmany(timeout_ms=500, max_records=max_records)
            except KafkaError as error:
                errors.warning("sink %s: fetch failed (%r); trying again", group, error)
                await asyncio.sleep(1)
                continue
            if fetched:
                started = time.perf_counter()
                values = [r.value for records in fetched.values() for r in records if r.value]
                if not await write_unless_stopped(sink.write(values), stop, grace_s=grace_s):
                    log.warning("sink %s: stopped in the middle of a batch; read again", group)
                    break
                offsets = {tp: rs[-1].offset + 1 for tp, rs in fetched.items() if rs}
                if await _commit(consumer, offsets, group) and on_batch is not None:
                    on_batch(_counts(fetched), started, _oldest_s(fetched))
            if time.monotonic() >= noted + OFFSETS_EVERY_S:
                await _note_offsets(consumer, progress)
                noted = time.monotonic()
    finally:
        await consumer.stop()


def _counts(fetched: dict[TopicPartition, list[Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tp, records in fetched.items():
        counts[tp.topic] = counts.get(tp.topic, 0) + len(records)
    return counts


def _oldest_s(fetched: dict[TopicPartition, list[Any]]) -> float | None:
    stamps = [r.timestamp for records in fetched.values() for r in records if r.timestamp]
    return min(stamps) / 1000 if stamps else None


async def _note_offsets(consumer: AIOKafkaConsumer, progress: SinkProgress) -> None:
    """Each assigned partition's log end offset and committed offset, between batches:
    every batch fetched is committed by now, so the consumer's position is the committed
    offset (a commit refused at a rebalance leaves the partition to another member)."""
    offsets: dict[TopicPartition, tuple[int, int]] = {}
    for tp in consumer.assignment():
        log_end = consumer.highwater(tp)  # known once a fetch answered for the partition
        if log_end is None:
            continue
        try:
            position = await asyncio.wait_for(consumer.position(tp), timeout=0.1)
        except (IllegalStateError, TimeoutError):  # revoked, or not positioned yet
            continue
        offsets[tp] = (int(log_end), int(position))
    progress.offsets = offsets


async def write_unless_stopped(
    write: Awaitable[None], stop: asyncio.Event, *, grace_s: float
) -> bool:
    """Await ``write``; once ``stop`` is set, for at most ``grace_s`` more seconds, then
    cancel it. Whether it completed."""
    task = asyncio.ensure_future(write)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace_s)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False
        task.result()  # its error, if any
        return True
    finally:
        stopping.cancel()


async def _commit(
    consumer: AIOKafkaConsumer,
    offsets: dict[TopicPartition, int],
    group: str,
) -> bool:
    """Whether the group took the commit."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as error:  # a rebalance took the partitions
        log.info(
            "sink %s: commit refused at a rebalance (%s); the batch is read again", group, error
        )
        return False
    return True


async def _run_due(timers: Sequence[Timer]) -> None:
    now = time.monotonic()
    for timer in timers:
        if now >= timer.due:
            timer.due = now + timer.every_s
            try:
                await timer.action()
            except Exception as error:  # noqa: BLE001 - a timer's failure stops no batch
                errors.warning("sink timer %r failed: %r", timer.action, error)

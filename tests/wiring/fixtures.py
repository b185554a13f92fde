"""Stand-ins for the broker side of a worker, for engine wiring tests (no Kafka).

:class:`Journal` records, in one ordered list, what the engine hands the broker: records
it produces (``app.producer.send``), table writes (Faust sends each to the table's
changelog with ``app.producer.send_soon``) and acknowledgements (``app.consumer.ack``).
The real broker and Faust's commit are covered by ``tests/integration``.

:func:`folds_pipeline` and :func:`sink_pipeline` build a worker or a sink process with a
journal in place of its broker; :func:`running` runs one runner as the engine does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, cast

from faust.types import TP, FutureMessage, Message
from faust.types.tuples import ConsumerMessage

from factorstream.settings import Settings, StreamSettings
from factorstream.stream_config import pipeline_config
from schemas import Event, decode, encode, kafka_key
from schemas.codec import structured_headers
from streams.app import Pipeline, create_pipeline
from streams.engine import Runner, SubjectsRunner

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Entry:
    """One thing handed to the broker: ``what`` is ``produce``, ``write`` or ``ack``."""

    what: str
    topic: str
    key: bytes | None = None
    value: Any = None
    headers: Headers = field(default_factory=list)
    offset: int | None = None


class _Batch:
    """aiokafka's ``BatchBuilder``, as far as streams/produce.py uses it."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, Headers]] = []

    def append(
        self, *, key: bytes | None, value: bytes | None, timestamp: float | None, headers: Headers
    ) -> object:
        self.records.append((key, value, list(headers)))
        return object()


class Journal:
    """``app.producer`` and ``app.consumer`` at once, recording into :attr:`entries`.

    A produced record's delivery is settled at once, unless :attr:`hold` (then
    :meth:`settle` settles them) or :attr:`fail` (then it fails with that error).
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.hold = False
        self.fail: BaseException | None = None
        self.unsettled: list[asyncio.Future[Any]] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.results: dict[int, Any] = {}

    # -- the producer --
    async def maybe_start(self) -> None:
        """Faust starts the producer before a topic's first ``send``: nothing to start."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Headers | None,
        **_: Any,
    ) -> asyncio.Future[None]:
        self.entries.append(Entry("produce", topic, key, value, list(headers or [])))
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            delivery.set_exception(self.fail)
        elif self.hold:
            self.unsettled.append(delivery)
        else:
            delivery.set_result(None)
        return delivery

    # -- the aiokafka producer under it (streams/produce.py sends record batches) --
    def _ensure_producer(self) -> Journal:
        return self

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}  # one partition: what a runner produced reads back in order (produced_as_read)

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        what = "write" if topic.endswith("-changelog") else "produce"
        for key, value, headers in batch.records:
            self.entries.append(Entry(what, topic, key, value, headers))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            delivery.set_exception(self.fail)
            return delivery
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + len(batch.records)
        delivered = SimpleNamespace(offset=offset)
        if self.hold:
            self.unsettled.append(delivery)
            self.results[id(delivery)] = delivered
        else:
            delivery.set_result(delivered)
        return delivery

    def send_soon(self, fut: FutureMessage) -> None:
        message = fut.message
        self.entries.append(Entry("write", message.channel.get_topic_name(), message.key))

    def settle(self) -> None:
        for delivery in self.unsettled:
            delivery.set_result(self.results.pop(id(delivery), None))
        self.unsettled.clear()

    # -- the consumer --
    def ack(self, message: Message) -> bool:
        self.entries.append(Entry("ack", message.topic, message.key, offset=message.offset))
        return True

    def topic_partitions(self, topic: str) -> int | None:
        return None  # unknown without a broker: Faust skips its partition count check

    # -- what was recorded --
    def of(self, what: str, topic: str | None = None) -> list[Entry]:
        return [e for e in self.entries if e.what == what and topic in (None, e.topic)]

    def events(self, topic: str) -> list[Event]:
        """The events produced to ``topic``, decoded."""
        return [decode(e.value, e.headers) for e in self.of("produce", topic)]

    def kinds(self) -> list[str]:
        return [e.what for e in self.entries]


def folds_pipeline(tmp_path: Path, **stream: Any) -> Pipeline:
    """A worker running the folds only (no sinks), memory store, its broker faked by a
    :class:`Journal` (``pipeline.app.producer`` and ``pipeline.app.consumer``)."""
    settings = StreamSettings(
        store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}", roles=("folds",), **stream
    )
    return _journaled(
        create_pipeline(pipeline_config(Settings(data_dir=tmp_path, stream=settings)))
    )


def sink_pipeline(tmp_path: Path, role: Literal["ledger", "lake"], **settings: Any) -> Pipeline:
    """A sink process (``factorstream sink ledger|lake``: ``role``, its own consumer
    group) over ``tmp_path`` as its data dir (a SQLite ledger, a lake directory), its broker
    faked by a :class:`Journal`; ``settings`` are further :class:`Settings` fields (e.g.
    ``ledger=LedgerSettings(...)``). The runner is ``pipeline.engine.runners[role]``."""
    stream = StreamSettings(
        store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}", roles=(role,)
    )
    return _journaled(
        create_pipeline(pipeline_config(Settings(data_dir=tmp_path, stream=stream, **settings)))
    )


def _journaled(pipeline: Pipeline) -> Pipeline:
    journal = Journal()
    pipeline.app.producer = journal  # type: ignore[assignment]
    pipeline.app.consumer = journal  # type: ignore[assignment]
    return pipeline


def journal_of(pipeline: Pipeline) -> Journal:
    journal = pipeline.app.producer
    assert isinstance(journal, Journal)
    return journal


@asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[asyncio.Task[None]]:
    """``runner`` taking the batches its engine dispatches (``Engine.dispatch``), as in the
    worker; stopped (cancelled) at the end of the block. A batch that failed ends the task
    with its error."""
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError, Exception):  # its error: the test's to check
            await task


def messages(
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]],
    *,
    partition: int = 0,
    first_offset: int = 0,
    times: Sequence[float] | None = None,
) -> list[Message]:
    """Records as Faust's consumer hands them over, at consecutive offsets; ``times``: each
    record's timestamp (Unix seconds; default: T0 for all)."""
    tp = TP(topic, partition)
    listed = list(records)
    stamps = list(times) if times is not None else [1_793_611_800.0] * len(listed)  # T0
    return [
        ConsumerMessage(
            topic,
            partition,
            first_offset + n,
            stamps[n],  # record time, Unix seconds
            0,
            cast(list[tuple[str, bytes]], list(headers)),
            key,
            value,
            None,
            tp=tp,
        )
        for n, (key, value, headers) in enumerate(listed)
    ]


def event_messages(
    topic: str, events: Sequence[Event], *, partition: int = 0, first_offset: int = 0
) -> list[Message]:
    """Events as a service produced them (structured mode, keyed by partitionkey), each
    appended at its own time."""
    records = [(kafka_key(e), encode(e), list(structured_headers())) for e in events]
    times = [e.time.timestamp() for e in events]
    return messages(topic, records, partition=partition, first_offset=first_offset, times=times)


def as_fetched(
    pipeline: Pipeline, events: Sequence[Event], *, first_offset: int = 0
) -> dict[TP, list[Message]]:
    """``events`` as the subjects runner fetches them from the events topic: each in the
    partition its ``partitionkey`` lives in, where a producer keyed by it puts it (offsets
    from ``first_offset`` in each partition)."""
    runner = pipeline.engine.runners["subjects"]
    assert isinstance(runner, SubjectsRunner)
    partition_of = runner.ingest.partition_of
    assert partition_of is not None
    topic = pipeline.events.get_topic_name()
    by_partition: dict[int, list[Event]] = {}
    for event in events:
        by_partition.setdefault(partition_of(kafka_key(event)), []).append(event)
    return {
        TP(topic, partition): event_messages(
            topic, listed, partition=partition, first_offset=first_offset
        )
        for partition, listed in by_partition.items()
    }


def produced_as_read(
    journal: Journal, topic: str, *, partition: int = 0, first_offset: int = 0
) -> list[Message]:
    """What the engine produced to ``topic``, as the next runner reads it."""
    records = [(e.key, e.value, e.headers) for e in journal.of("produce", topic)]
    return messages(topic, records, partition=partition, first_offset=first_offset)

"""The ledger and lake sinks: a fetched batch at a time, acknowledged once durable.

Both read every event, raw and derived (the ingested, lockouts and anomalies topics); a
fetch's records reach a sink as one batch, acknowledged only after the sink made them
durable, and a crash re-delivers whatever was not, which both take idempotently by event
id. Each is a transport-free :class:`LedgerSink` / :class:`LakeSink` (``write`` a batch of
record values, ``tick`` on a timer, ``forget`` after a rebalance), hosted by an engine
runner in the worker (:class:`LedgerRunner`, :class:`LakeRunner`) or by a consumer group
in a process of its own (``factorstream sink ledger|lake``: ``streams/sink_host.py``).
What each sink does with a batch, and its timers: docs/stream-engine.md#the-sinks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
from faust.types import TopicT

from analytics.erasure import ErasedSubjects, redact_subject
from analytics.lake import LakeWriter, WriteReport
from analytics.tables import flatten
from audit.ledger import AppendResult, Ledger
from audit.sink import Send, append_durably, publish_checkpoints
from schemas import Event, EventDecodeError, decode
from schemas.payloads import SubjectErased
from streams.engine import Fetched, Runner

if TYPE_CHECKING:  # prometheus_client is the optional extra ``metrics``
    from streams.metrics import StreamMetrics

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
RETENTION_INTERVAL_S = 3600.0
"""How often a sink applies its store's retention."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LedgerSink:
    """Every event into the ledger, then the checkpoints that became due to their topic
    (``send``; ``None``: not published)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        send: Send | None,
        batch_size: int = 2000,
        clock: Clock = _utc_now,
        keep_personal: timedelta | None = None,
    ) -> None:
        """``keep_personal``: entries' personal data is shredded after this (``None``: kept)."""
        self.ledger, self.send, self.batch_size, self.clock = ledger, send, batch_size, clock
        self.keep_personal = keep_personal
        self.appended = 0
        self.shredded = 0
        self.metrics: StreamMetrics | None = None

    def measure_with(self, metrics: StreamMetrics) -> None:
        """Count into ``metrics`` from now on, starting from the ledger as it stands (its
        tree size, and its newest checkpoint, if any, signed by an earlier process)."""
        self.metrics = metrics
        metrics.ledger_tree_size.set(self.ledger.size())
        signed = self.ledger.last_checkpoint_at()
        if signed is not None:
            metrics.checkpoint_signed(signed)

    @property
    def tick_every_s(self) -> float | None:
        """How often :meth:`tick` signs time-based checkpoints (``None``: never)."""
        if self.send is None:
            return None
        return max(1.0, self.ledger.checkpoint_interval.total_seconds() / 4)

    async def write(self, values: list[bytes]) -> None:
        size = self.batch_size
        for start in range(0, len(values), size):  # a transaction of at most batch_size
            chunk = values[start : start + size]
            started = time.perf_counter()
            observe = None if self.metrics is None else self._observer(started)
            self.appended += await append_durably(
                self.ledger, chunk, clock=self.clock, on_append=observe
            )
        if self.send is not None:
            await publish_checkpoints(self.ledger, self.send, clock=self.clock)

    async def tick(self) -> None:
        """Sign a checkpoint when one is due by time (no events came), and publish it."""
        if self.send is None:
            return
        signed = await asyncio.to_thread(self.ledger.tick, now=self.clock())
        if self.metrics is not None and signed:
            self.metrics.checkpoint_signed(signed[-1].time)
        await publish_checkpoints(self.ledger, self.send, clock=self.clock)

    async def apply_retention(self) -> None:
        """Shred the personal data of entries older than ``keep_personal`` (their data
        keys destroyed; ``shredded`` counts them). Idempotent; logged and counted each run."""
        if self.keep_personal is None:
            return
        now = self.clock()
        destroyed = await asyncio.to_thread(
            self.ledger.shred_older_than, self.keep_personal, now=now
        )
        self.shredded += destroyed
        log.info(
            "ledger retention: %d data keys destroyed (personal data older than %s shredded)",
            destroyed,
            now - self.keep_personal,
        )
        if self.metrics is not None and destroyed:
            self.metrics.retention_removed.labels("ledger").inc(destroyed)

    def _observer(self, started: float) -> Callable[[AppendResult], None]:
        metrics = self.metrics

        def observe(result: AppendResult) -> None:
            if metrics is not None:
                elapsed = time.perf_counter() - started
                metrics.ledger_appended_batch(elapsed, result.appended, result.size)
                if result.checkpoints:
                    metrics.checkpoint_signed(result.checkpoints[-1].time)

        return observe

    def forget(self) -> None:
        """Nothing is cached: the ledger skips the ids it already holds."""


class LakeSink:
    """Every event into the Parquet lake, in files of at most ``batch_rows`` rows."""

    tick_every_s: float | None = None

    def __init__(self, lake_path: Path, *, batch_rows: int) -> None:
        self.lake_path, self.batch_rows = lake_path, batch_rows
        self._writer: LakeWriter | None = None
        self._erased: ErasedSubjects | None = None
        self.reports: list[WriteReport] = []
        self.metrics: StreamMetrics | None = None

    def measure_with(self, metrics: StreamMetrics) -> None:
        """Count into ``metrics`` from now on."""
        self.metrics = metrics

    async def _open(self) -> tuple[LakeWriter, ErasedSubjects]:
        if self._writer is None or self._erased is None:
            self._writer = await asyncio.to_thread(LakeWriter, self.lake_path)  # creates it
            self._erased = await asyncio.to_thread(ErasedSubjects.of_lake, self.lake_path)
        return self._writer, self._erased

    async def write(self, values: list[bytes]) -> None:
        writer, erased = await self._open()
        events: list[Event] = []
        for value in values:
            try:
                events.append(decode(value))
            except EventDecodeError as error:  # only our stages write these topics
                log.error("lake sink: skipping an event that does not decode: %s", error)
        for start in range(0, len(events), self.batch_rows):
            chunk = events[start : start + self.batch_rows]
            erasures = [e for e in chunk if isinstance(e.data, SubjectErased)]
            for event in erasures:
                erased.add(event.tenant, event.subject, event.time)
            tables = erased.redact(flatten(chunk)) if erased else flatten(chunk)
            started = time.perf_counter()
            report = await asyncio.to_thread(writer.write, tables)
            if self.metrics is not None:
                self.metrics.lake_write_seconds.observe(time.perf_counter() - started)
                self.metrics.lake_rows.inc(len(chunk))
            for event in erasures:  # what earlier batches wrote
                await asyncio.to_thread(redact_subject, self.lake_path, event.tenant, event.subject)
            self.reports = [*self.reports[-99:], report]

    async def tick(self) -> None:
        """Nothing on a timer (compaction has its own)."""

    def forget(self) -> None:
        """After a rebalance: read the erased subjects again (another lake sink of the group
        may have recorded an erasure since)."""
        self._erased = None


def _values(fetched: Fetched) -> list[bytes]:
    return [m.value for messages in fetched.values() for m in messages if m.value is not None]


def faust_send(topic: TopicT) -> Send:
    """:data:`~audit.sink.Send` to a Faust topic: sent now (``force``), never attached to a
    Faust event that may be current (an attached send waits for that event's commit, which
    waits for this batch); done once the broker has it."""

    async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        sent: Any = await topic.send(key=key, value=value, headers=headers, force=True)
        if isinstance(sent, Awaitable):
            await sent

    return send


class LedgerRunner(Runner):
    """The ledger sink as an engine runner in the worker (role ``ledger``)."""

    def __init__(
        self,
        app: faust.App,
        *,
        ledger: Ledger,
        checkpoints: TopicT | None,
        batch_size: int = 2000,
        clock: Clock = _utc_now,
        keep_personal: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.checkpoints = checkpoints
        send = None if checkpoints is None else faust_send(checkpoints)
        self.sink = LedgerSink(
            ledger, send=send, batch_size=batch_size, clock=clock, keep_personal=keep_personal
        )
        if self.sink.tick_every_s is not None:
            app.timer(self.sink.tick_every_s, name=f"{self.name}-checkpoints")(
                self.sign_checkpoints
            )
        if keep_personal is not None:
            app.timer(RETENTION_INTERVAL_S, on_leader=True, name=f"{self.name}-retention")(
                self.sink.apply_retention
            )

    @property
    def ledger(self) -> Ledger:
        return self.sink.ledger

    @property
    def clock(self) -> Clock:
        return self.sink.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.sink.clock = clock

    async def handle(self, fetched: Fetched) -> None:
        await self.sink.write(_values(fetched))

    async def sign_checkpoints(self) -> None:
        async with self.lock:  # never between a batch's append and its checkpoints
            await self.sink.tick()


class LakeRunner(Runner):
    """The lake sink as an engine runner in the worker (role ``lake``)."""

    def __init__(self, app: faust.App, *, lake_path: Path, batch_rows: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.sink = LakeSink(lake_path, batch_rows=batch_rows)

    @property
    def lake_path(self) -> Path:
        return self.sink.lake_path

    @property
    def reports(self) -> list[WriteReport]:
        return self.sink.reports

    async def handle(self, fetched: Fetched) -> None:
        await self.sink.write(_values(fetched))

    def forget(self) -> None:
        self.sink.forget()

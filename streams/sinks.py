"""The ledger and lake sinks as engine runners: a fetched batch at a time, acked once durable.

Both read every event, raw and derived (the ingested, lockouts and anomalies topics), in
the engine (``streams/engine.py``): a fetch's records reach the sink as one batch, the
runner acknowledges them only after the sink made them durable, and a crash re-delivers
whatever was not acknowledged, which both sinks take idempotently by event id.

* **Ledger** (``audit/``): ``append_durably`` in transactions of at most ``batch_size``
  events (database errors retried with backoff, nothing acknowledged meanwhile), then the
  signed checkpoints are published to the
  checkpoints topic; a timer signs time-based checkpoints when no events arrive.
* **Lake** (``analytics/``): each batch flattened into the lake's tables and written as
  files of at most ``batch_rows`` rows (``LakeWriter``: complete files, idempotent by
  event id); a ``privacy.subject.erased`` redacts the subject in the whole lake, and rows
  of erased subjects are redacted before they are written. Compaction runs on a timer on
  the leader.

Either runs in the worker or in a process of its own (``factorstream sink ledger|lake``,
its own consumer group), so it scales and fails apart from the folds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.types import TopicT

from analytics.erasure import ErasedSubjects, redact_subject
from analytics.lake import LakeWriter, WriteReport
from analytics.tables import flatten
from audit.ledger import Ledger
from audit.sink import append_durably, publish_checkpoints
from schemas import Event, EventDecodeError, decode
from schemas.payloads import SubjectErased
from streams.engine import Fetched, Runner

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _values(fetched: Fetched) -> list[bytes]:
    return [m.value for messages in fetched.values() for m in messages if m.value is not None]


class LedgerRunner(Runner):
    """Every event into the ledger, then the checkpoints that became due to their topic."""

    def __init__(
        self,
        app: faust.App,
        *,
        ledger: Ledger,
        checkpoints: TopicT | None,
        batch_size: int = 2000,
        clock: Clock = _utc_now,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.ledger, self.checkpoints, self.clock = ledger, checkpoints, clock
        self.batch_size = batch_size
        self.appended = 0
        if checkpoints is not None:
            interval = max(1.0, ledger.checkpoint_interval.total_seconds() / 4)
            app.timer(interval, name=f"{self.name}-checkpoints")(self.sign_checkpoints)

    async def handle(self, fetched: Fetched) -> None:
        values, size = _values(fetched), self.batch_size
        for start in range(0, len(values), size):  # a transaction of at most batch_size
            chunk = values[start : start + size]
            self.appended += await append_durably(self.ledger, chunk, clock=self.clock)
        if self.checkpoints is not None:
            await publish_checkpoints(self.ledger, self.checkpoints, clock=self.clock)

    async def sign_checkpoints(self) -> None:
        if self.checkpoints is None:
            return
        async with self.lock:  # never between a batch's append and its checkpoints
            await asyncio.to_thread(self.ledger.tick, now=self.clock())
            await publish_checkpoints(self.ledger, self.checkpoints, clock=self.clock)


class LakeRunner(Runner):
    """Every event into the Parquet lake, in files of at most ``batch_rows`` rows."""

    def __init__(self, app: faust.App, *, lake_path: Path, batch_rows: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.lake_path, self.batch_rows = lake_path, batch_rows
        self._writer: LakeWriter | None = None
        self._erased: ErasedSubjects | None = None
        self.reports: list[WriteReport] = []

    async def _open(self) -> tuple[LakeWriter, ErasedSubjects]:
        if self._writer is None or self._erased is None:
            self._writer = await asyncio.to_thread(LakeWriter, self.lake_path)  # creates it
            self._erased = await asyncio.to_thread(ErasedSubjects.of_lake, self.lake_path)
        return self._writer, self._erased

    async def handle(self, fetched: Fetched) -> None:
        writer, erased = await self._open()
        events: list[Event] = []
        for value in _values(fetched):
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
            report = await asyncio.to_thread(writer.write, tables)
            for event in erasures:  # what earlier batches wrote
                await asyncio.to_thread(redact_subject, self.lake_path, event.tenant, event.subject)
            self.reports = [*self.reports[-99:], report]

    def forget(self) -> None:
        """After a rebalance: read the erased subjects again (another lake sink of the group
        may have recorded an erasure since)."""
        self._erased = None

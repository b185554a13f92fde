"""The lake sink: a Faust agent writing micro-batches of events to the Parquet lake.

It takes up to ``batch_rows`` events or whatever arrived within ``batch_timeout_s``
(``stream.take``), decodes them with our codec, flattens them into the lake's tables and
appends one file per table and date (``analytics.lake.LakeWriter``: complete files only,
idempotent by event id, so Kafka's at-least-once re-delivery adds no duplicate rows).
``concurrency=1`` (faust-streaming issue #606); the writer runs in a thread so the event
loop keeps serving while Parquet is written. A ``privacy.subject.erased`` event redacts the
subject's personal data in the whole lake (``analytics/erasure.py``), and rows of erased
subjects from before their erasure are redacted before they are written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import faust
from faust.types import AgentT, StreamT, TopicT

from analytics.compaction import compact
from analytics.erasure import ErasedSubjects, redact_subject
from analytics.lake import LakeWriter, WriteReport
from analytics.tables import flatten
from schemas import decode
from schemas.payloads import SubjectErased

AGENT_NAME = "lake-sink"
COMPACTION_INTERVAL_S = 300.0


def attach_lake_sink(
    app: faust.App,
    *,
    source: TopicT,
    lake_path: Path,
    batch_rows: int,
    batch_timeout_s: float,
    name: str = AGENT_NAME,
) -> AgentT[bytes]:
    """Wire the lake sink on ``source`` (raw bytes values: encoded events).

    The agent yields one :class:`~analytics.lake.WriteReport` per micro-batch (observable
    in ``test_context``). Derived events (lockouts, anomalies) reach the lake when
    ``source`` also covers their topics, e.g. ``app.topic(ingested, lockouts, anomalies)``.
    """

    async def write_lake(stream: StreamT[bytes]) -> AsyncIterator[WriteReport]:
        writer = await asyncio.to_thread(LakeWriter, lake_path)  # creates the lake if new
        erased = await asyncio.to_thread(ErasedSubjects.of_lake, lake_path)
        async for values in stream.take(batch_rows, within=batch_timeout_s):
            events = [decode(value) for value in values]  # ingest wrote them: a failure is a bug
            erasures = [e for e in events if isinstance(e.data, SubjectErased)]
            for event in erasures:
                erased.add(event.tenant, event.subject, event.time)
            tables = erased.redact(flatten(events)) if erased else flatten(events)
            report = await asyncio.to_thread(writer.write, tables)
            for event in erasures:  # what earlier batches wrote
                await asyncio.to_thread(redact_subject, lake_path, event.tenant, event.subject)
            yield report

    agent: AgentT[bytes] = app.agent(source, name=name, concurrency=1)(write_lake)
    return agent


def attach_lake_compaction(
    app: faust.App, *, lake_path: Path, min_files: int, interval_s: float = COMPACTION_INTERVAL_S
) -> None:
    """Compact the lake every ``interval_s`` seconds, on the leader worker only (in a thread;
    compaction and the sinks of every worker coordinate through the lake's lock)."""

    async def compact_lake() -> None:
        await asyncio.to_thread(compact, lake_path, min_files=min_files)

    app.timer(interval_s, on_leader=True, name="lake-compaction")(compact_lake)

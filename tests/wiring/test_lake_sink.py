"""The lake sink agent in Faust's test_context (memory store): micro-batches become Parquet."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import faust
import pytest
from faust.types import TopicT

from analytics.lake import LakeWriter, WriteReport
from analytics.sink import attach_lake_sink
from analytics.views import connect
from schemas import Event, encode, kafka_key
from tests.factories import T0, sample_event
from tests.support import until


def _app() -> tuple[faust.App, TopicT]:
    app = faust.App(
        f"lake-wiring-{uuid.uuid4().hex[:8]}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    return app, app.topic("events-ingested", key_type=bytes, value_type=bytes)


def _events(n: int, *, start: int = 0) -> list[Event]:
    return [
        sample_event(
            "mfa.verification.succeeded",
            subject=f"u-{i}",
            correlationid=f"login-{i}",
            now=T0 + timedelta(seconds=i),
        )
        for i in range(start, start + n)
    ]


def _count(lake: Path, table: str) -> int:
    con = connect(lake)
    try:
        (count,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)  # noqa: S608
        return int(count)
    finally:
        con.close()


async def test_the_sink_writes_full_batches_and_the_remainder_within_the_timeout(
    tmp_path: Path,
) -> None:
    app, topic = _app()
    lake = tmp_path / "lake"
    agent = attach_lake_sink(app, source=topic, lake_path=lake, batch_rows=3, batch_timeout_s=0.2)
    events = _events(7)
    async with agent.test_context() as context:
        for event in events:
            await context.put(encode(event), key=kafka_key(event), wait=False)
        await until(lambda: len(context.results) >= 3)
        reports = [context.results[k] for k in sorted(context.results)]
    assert all(isinstance(r, WriteReport) for r in reports)
    assert [r.written["events"] for r in reports] == [3, 3, 1]
    assert [r.written["verifications"] for r in reports] == [3, 3, 1]
    # one complete file per table and date, per batch, under the partition of the day
    files = sorted((lake / "events" / f"date={T0.date().isoformat()}").glob("*.parquet"))
    assert len(files) == 3
    assert _count(lake, "events") == 7
    assert _count(lake, "verifications") == 7


async def test_a_redelivered_batch_adds_no_rows_however_it_is_cut(tmp_path: Path) -> None:
    app, topic = _app()
    lake = tmp_path / "lake"
    first = _events(4)
    LakeWriter(lake).write_events(first)  # written by a previous run of the sink
    agent = attach_lake_sink(app, source=topic, lake_path=lake, batch_rows=3, batch_timeout_s=0.2)
    replay = first[2:] + _events(3, start=4)  # Kafka re-delivers from an older offset
    async with agent.test_context() as context:
        for event in replay:
            await context.put(encode(event), key=kafka_key(event), wait=False)
        await until(lambda: len(context.results) >= 2)
        reports = [context.results[k] for k in sorted(context.results)]
    assert sum(r.duplicates["events"] for r in reports) == 2
    assert sum(r.written["events"] for r in reports) == 3
    assert _count(lake, "events") == 7
    con = connect(lake)
    ids = [row[0] for row in con.execute("SELECT id FROM events ORDER BY time").fetchall()]
    assert ids == [e.id for e in first + replay[2:]]


@pytest.mark.parametrize("rows", [1, 50])
async def test_batch_rows_bounds_each_file(tmp_path: Path, rows: int) -> None:
    app, topic = _app()
    lake = tmp_path / "lake"
    agent = attach_lake_sink(
        app, source=topic, lake_path=lake, batch_rows=rows, batch_timeout_s=0.1
    )
    async with agent.test_context() as context:
        for event in _events(5):
            await context.put(encode(event), key=kafka_key(event), wait=False)
        await until(lambda: _count(lake, "events") == 5)
    files = list((lake / "events" / f"date={T0.date().isoformat()}").glob("*.parquet"))
    assert len(files) == (5 if rows == 1 else 1)


async def test_an_erasure_event_redacts_the_subject_in_the_whole_lake(tmp_path: Path) -> None:
    """``privacy.subject.erased`` after the subject's events, one in the same batch: the
    subject's IP is in no row afterwards; another subject keeps theirs."""
    app, topic = _app()
    lake = tmp_path / "lake"
    earlier = [sample_event("mfa.verification.failed", subject=s, now=T0) for s in ("u-1", "u-2")]
    LakeWriter(lake).write_events(earlier)  # written by an earlier batch
    late = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(days=1))
    erased = sample_event("privacy.subject.erased", subject="u-1", now=T0 + timedelta(days=1))
    agent = attach_lake_sink(app, source=topic, lake_path=lake, batch_rows=10, batch_timeout_s=0.2)
    async with agent.test_context() as context:
        for event in (late, erased):
            await context.put(encode(event), key=kafka_key(event), wait=False)
        await until(lambda: len(context.results) >= 1, timeout=30)
    con = connect(lake)
    rows = con.execute("SELECT subject, ip FROM events ORDER BY subject, time").fetchall()
    assert rows == [("u-1", None), ("u-1", None), ("u-1", None), ("u-2", "203.0.113.7")]


async def test_late_events_of_an_erased_subject_are_written_redacted_also_after_a_restart(
    tmp_path: Path,
) -> None:
    """A failure of the subject from before the erasure reaches the sink after it (Kafka
    re-delivers after a crash, or a derived event comes from another topic): written
    without the IP, by a sink that knows the erasure only from the lake. What the subject
    does after the erasure is kept."""
    lake = tmp_path / "lake"
    erased = sample_event("privacy.subject.erased", subject="u-1", now=T0 + timedelta(hours=1))
    late = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(minutes=30))
    later = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(hours=2))
    for batch in ([erased], [late], [later]):  # each through a sink started afresh
        app, topic = _app()
        agent = attach_lake_sink(
            app, source=topic, lake_path=lake, batch_rows=10, batch_timeout_s=0.1
        )
        async with agent.test_context() as context:
            for event in batch:
                await context.put(encode(event), key=kafka_key(event), wait=False)
            await until(lambda: len(context.results) >= 1, timeout=30)
    con = connect(lake)
    rows = con.execute("SELECT id, ip FROM events WHERE type = $1 ORDER BY time", [late.type])
    assert rows.fetchall() == [(late.id, None), (later.id, "203.0.113.7")]

"""The lake sink as an engine runner (streams/sinks.py: ``LakeRunner``) over a real lake
directory, its broker faked by a journal (tests/wiring/fixtures.py): each fetched batch
becomes Parquet files of at most ``batch_rows`` rows, acked once written."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from analytics.lake import LakeWriter
from analytics.views import connect
from factorstream.settings import LakeSettings
from schemas import Event
from streams.app import Pipeline
from streams.engine import Fetched
from streams.sinks import LakeRunner
from tests.factories import T0, sample_event
from tests.support import until
from tests.wiring.fixtures import event_messages, journal_of, running, sink_pipeline


def lake_sink(data_dir: Path, *, batch_rows: int) -> tuple[Pipeline, LakeRunner]:
    """A lake sink process (started afresh on each call) writing ``<data_dir>/lake``."""
    pipeline = sink_pipeline(data_dir, "lake", lake=LakeSettings(batch_rows=batch_rows))
    runner = pipeline.engine.runners["lake"]
    assert isinstance(runner, LakeRunner)
    assert runner.lake_path == data_dir / "lake"
    return pipeline, runner


def fetch(pipeline: Pipeline, *parts: Sequence[Event], first_offset: int = 0) -> Fetched:
    """One fetch: each of ``parts`` from its own partition of the ingested topic."""
    topic = pipeline.ingested.get_topic_name()
    return {
        TP(topic, n): event_messages(topic, part, partition=n, first_offset=first_offset)
        for n, part in enumerate(parts)
    }


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


def _files(lake: Path, table: str) -> list[Path]:
    """The Parquet files readers see in ``table``'s partition of T0's day."""
    return sorted((lake / table / f"date={T0.date().isoformat()}").glob("*.parquet"))


async def test_a_batch_is_written_in_files_of_at_most_batch_rows_rows(tmp_path: Path) -> None:
    """Seven events in one fetch over two partitions, ``batch_rows=3``: 3 + 3 + 1."""
    pipeline, sink = lake_sink(tmp_path, batch_rows=3)
    events = _events(7)
    await sink.handle(fetch(pipeline, events[:4], events[4:]))
    assert [r.written["events"] for r in sink.reports] == [3, 3, 1]
    assert [r.written["verifications"] for r in sink.reports] == [3, 3, 1]
    # one complete file per table and date, per chunk, under the partition of the day
    assert len(_files(sink.lake_path, "events")) == 3
    assert _count(sink.lake_path, "events") == 7
    assert _count(sink.lake_path, "verifications") == 7


@pytest.mark.parametrize("rows", [1, 50])
async def test_batch_rows_bounds_each_file(tmp_path: Path, rows: int) -> None:
    pipeline, sink = lake_sink(tmp_path, batch_rows=rows)
    await sink.handle(fetch(pipeline, _events(5)))
    assert _count(sink.lake_path, "events") == 5
    assert len(_files(sink.lake_path, "events")) == (5 if rows == 1 else 1)


async def test_a_batch_is_acked_only_once_its_files_are_in_the_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, sink = lake_sink(tmp_path, batch_rows=10)
    journal, engine = journal_of(pipeline), pipeline.engine
    entered, release = threading.Event(), threading.Event()
    write = LakeWriter.write

    def slow_write(self: LakeWriter, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(LakeWriter, "write", slow_write)
    fetched = fetch(pipeline, _events(3))
    async with running(sink) as task:
        await engine.dispatch(engine.epoch, fetched)
        await until(entered.is_set)
        await asyncio.sleep(0.1)
        assert journal.of("ack") == []  # writing: nothing acked
        release.set()
        await until(lambda: len(journal.of("ack")) == 3 or task.done())
    assert [e.offset for e in journal.of("ack")] == [0, 1, 2]
    assert _count(sink.lake_path, "events") == 3


@pytest.mark.parametrize(
    ("cuts", "batch_rows"),
    [((5,), 3), ((1, 4), 3), ((2, 3), 2), ((5,), 1), ((3, 2), 10), ((4, 1), 4)],
)
async def test_a_redelivered_batch_adds_no_rows_however_it_is_cut(
    tmp_path: Path, cuts: tuple[int, ...], batch_rows: int
) -> None:
    """A sink wrote events 0-3 and stopped before its offsets were committed; the one
    started after it reads again from event 2 (fetched in ``cuts``), then 3 new events."""
    first = _events(4)
    pipeline, sink = lake_sink(tmp_path, batch_rows=3)
    await sink.handle(fetch(pipeline, first))

    pipeline, sink = lake_sink(tmp_path, batch_rows=batch_rows)  # restarted
    replay = first[2:] + _events(3, start=4)
    start = 0
    for cut in cuts:
        await sink.handle(fetch(pipeline, replay[start : start + cut], first_offset=2 + start))
        start += cut
    assert start == len(replay)
    assert sum(r.duplicates["events"] for r in sink.reports) == 2
    assert sum(r.written["events"] for r in sink.reports) == 3
    assert _count(sink.lake_path, "events") == 7
    con = connect(sink.lake_path)
    ids = [row[0] for row in con.execute("SELECT id FROM events ORDER BY time").fetchall()]
    assert ids == [e.id for e in first + replay[2:]]


async def test_an_erasure_event_redacts_the_subject_in_the_whole_lake(tmp_path: Path) -> None:
    """``privacy.subject.erased`` after the subject's events, one in the same batch and
    others in an earlier batch on another day: the subject's IP is in no row afterwards;
    another subject keeps theirs."""
    pipeline, sink = lake_sink(tmp_path, batch_rows=10)
    earlier = [sample_event("mfa.verification.failed", subject=s, now=T0) for s in ("u-1", "u-2")]
    await sink.handle(fetch(pipeline, earlier))
    late = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(days=1))
    erased = sample_event("privacy.subject.erased", subject="u-1", now=T0 + timedelta(days=1))
    await sink.handle(fetch(pipeline, [late, erased], first_offset=2))
    con = connect(sink.lake_path)
    rows = con.execute("SELECT subject, ip FROM events ORDER BY subject, time").fetchall()
    assert rows == [("u-1", None), ("u-1", None), ("u-1", None), ("u-2", "203.0.113.7")]


async def test_late_events_of_an_erased_subject_are_written_redacted_also_after_a_restart(
    tmp_path: Path,
) -> None:
    """A failure of the subject from before the erasure reaches the sink after it (Kafka
    re-delivers after a crash, or a derived event comes from another topic): written
    without the IP, by a sink that knows the erasure only from the lake. What the subject
    does after the erasure is kept."""
    erased = sample_event("privacy.subject.erased", subject="u-1", now=T0 + timedelta(hours=1))
    late = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(minutes=30))
    later = sample_event("mfa.verification.failed", subject="u-1", now=T0 + timedelta(hours=2))
    for offset, batch in enumerate(([erased], [late], [later])):
        pipeline, sink = lake_sink(tmp_path, batch_rows=10)  # each a sink started afresh
        await sink.handle(fetch(pipeline, batch, first_offset=offset))
    con = connect(tmp_path / "lake")
    rows = con.execute("SELECT id, ip FROM events WHERE type = $1 ORDER BY time", [late.type])
    assert rows.fetchall() == [(late.id, None), (later.id, "203.0.113.7")]

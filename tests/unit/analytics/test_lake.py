"""The lake writer, compaction and the views: layout, complete files, idempotence by id."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from analytics.columns import SCHEMAS, TABLES
from analytics.compaction import compact
from analytics.lake import GENERATIONS, LakeWriter, partition_link, write_file
from analytics.tables import flatten, split_by_date
from analytics.views import connect, write_views_file
from schemas import Event
from tests.factories import PAYLOADS, T0, sample_event


def logins(n: int, *, start: int = 0, every: timedelta = timedelta(minutes=1)) -> list[Event]:
    return [
        sample_event("auth.login.attempted", subject=f"u-{i}", now=T0 + i * every)
        for i in range(start, start + n)
    ]


def count(lake: Path, table: str = "events") -> int:
    con = connect(lake)
    try:
        result = con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        assert result is not None
        return int(result[0])
    finally:
        con.close()


def files(lake: Path, table: str = "events", day: str = "2026-11-02") -> list[Path]:
    return sorted((lake / table / f"date={day}").glob("*.parquet"))


def test_every_event_type_lands_in_events_and_its_typed_table(tmp_path: Path) -> None:
    events = [sample_event(name) for name in PAYLOADS]
    report = LakeWriter(tmp_path).write_events(events)
    assert report.written == {
        "events": len(PAYLOADS),  # one of every type
        "enrollments": 4,
        "challenges": 5,  # issued, sent, delivery_failed, delivery_reported, mfa.required
        "verifications": 8,
        "lockouts": 4,
        "risk_detections": 1,
        "lifecycle": 9,  # device.* 3, admin.override.* 3, access.temporary.* 3
    }
    con = connect(tmp_path)
    types = dict(con.execute("SELECT type, factor FROM events").fetchall())
    assert types["mfa.push.approved"] == "push"
    assert types["mfa.recovery.succeeded"] == "recovery_code"
    (row,) = con.execute("SELECT date, latitude, device_kind FROM lake_events LIMIT 1").fetchall()
    assert str(row[0]) == "2026-11-02" and row[1:] == (52.52, "desktop")


def test_files_are_hive_partitioned_by_utc_date_with_names_fixed_by_their_rows(
    tmp_path: Path,
) -> None:
    events = logins(3, every=timedelta(hours=10))  # 09:30, 19:30, next day 05:30
    LakeWriter(tmp_path / "a").write_events(events)
    LakeWriter(tmp_path / "b").write_events(events)
    a_day1, a_day2 = files(tmp_path / "a"), files(tmp_path / "a", day="2026-11-03")
    assert (len(a_day1), len(a_day2)) == (1, 1)
    assert pq.read_table(a_day1[0]).num_rows == 2
    assert [p.name for p in a_day1] == [p.name for p in files(tmp_path / "b")]
    assert partition_link(tmp_path / "a", "events", T0.date()).is_symlink()
    assert "date" not in pq.read_schema(a_day1[0]).names  # the partition is the directory


def test_a_redelivered_batch_cut_differently_adds_only_new_rows(tmp_path: Path) -> None:
    events = logins(10)
    writer = LakeWriter(tmp_path)
    assert writer.write_events(events[:6]).written["events"] == 6
    again = writer.write_events(events[4:])
    assert (again.written["events"], again.duplicates["events"]) == (4, 2)
    assert writer.write_events(events).written["events"] == 0
    # a new writer (after a restart, or another worker) learns the ids from the files
    fresh = LakeWriter(tmp_path).write_events(events[::-1] + events[:1])
    assert (fresh.written["events"], fresh.duplicates["events"]) == (0, 11)
    assert count(tmp_path) == 10
    assert count(tmp_path, "verifications") == 0


def test_temporary_files_are_invisible_to_readers_and_writers(tmp_path: Path) -> None:
    LakeWriter(tmp_path).write_events(logins(4))
    (files(tmp_path)[0].parent / ".half-written.parquet.tmp").write_bytes(b"PAR1 not yet")
    assert count(tmp_path) == 4
    assert LakeWriter(tmp_path).write_events(logins(2, start=4)).written["events"] == 2
    assert count(tmp_path) == 6


def test_an_empty_lake_has_typed_empty_views(tmp_path: Path) -> None:
    con = connect(tmp_path / "lake")
    for table in TABLES:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # noqa: S608
        described = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        assert set(SCHEMAS[table].names) <= described and "date" in described
    assert "time_to_complete_ms" in {r[0] for r in con.execute("DESCRIBE verifications").fetchall()}


def test_compaction_merges_a_partition_into_one_file_atomically(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path)
    events = logins(12)
    for start in range(0, 12, 3):
        writer.write_events(events[start : start + 3])
    old_generation = files(tmp_path)[0].resolve().parent
    assert len(files(tmp_path)) == 4
    assert compact(tmp_path, min_files=5) == []  # below the threshold: nothing to do
    done = compact(tmp_path, min_files=4)
    assert [(c.table, c.files, c.rows) for c in done] == [("events", 4, 12)]
    (merged,) = files(tmp_path)
    assert not old_generation.exists()
    assert merged.resolve().parent.parent.name == GENERATIONS
    assert pq.read_table(merged).column("id").to_pylist() == [e.id for e in events]
    assert count(tmp_path) == 12
    # the writer notices the new generation and still refuses the old ids
    assert writer.write_events(events[:5] + logins(1, start=12)).written["events"] == 1
    assert count(tmp_path) == 13


def test_compaction_drops_repeated_ids(tmp_path: Path) -> None:
    events = logins(3)
    LakeWriter(tmp_path).write_events(events)
    generation = files(tmp_path)[0].resolve().parent
    copy = flatten(events[:2])["events"]  # the same ids, written behind the writer's back
    write_file(generation, "copy.parquet", copy)
    assert count(tmp_path) == 5
    compact(tmp_path, min_files=2)
    assert count(tmp_path) == 3


def test_the_views_file_opens_read_only_in_several_processes_and_sees_new_files(
    tmp_path: Path,
) -> None:
    lake, path = tmp_path / "lake", tmp_path / "analytics.duckdb"
    LakeWriter(lake).write_events(logins(2))
    write_views_file(lake, path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    readers = [duckdb.connect(str(path), read_only=True) for _ in range(2)]
    assert [r.execute("SELECT count(*) FROM events").fetchone() for r in readers] == [(2,), (2,)]
    LakeWriter(lake).write_events(logins(3, start=2))
    assert readers[0].execute("SELECT count(*) FROM events").fetchone() == (5,)
    with pytest.raises(duckdb.Error):
        readers[1].execute("CREATE TABLE t (x INT)")
    write_views_file(lake, path)  # replaced while open: the readers keep their file
    assert readers[1].execute("SELECT count(*) FROM verifications").fetchone() == (0,)
    for reader in readers:
        reader.close()
    os.remove(path)


def test_split_by_date_groups_rows_by_utc_day() -> None:
    table = flatten(logins(3, every=timedelta(hours=10)))["events"]
    parts = split_by_date(table)
    assert [(str(day), part.num_rows) for day, part in parts] == [
        ("2026-11-02", 2),
        ("2026-11-03", 1),
    ]


def test_connections_and_their_cursors_use_utc(tmp_path: Path) -> None:
    con = connect(tmp_path)
    assert con.cursor().execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_a_file_that_fails_to_write_is_written_by_the_retry_and_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's files are written concurrently; when one fails, the others stand, the
    error reaches the caller, and the redelivered batch writes only the missing rows."""
    events = [sample_event(name, subject=f"u-{i}") for i, name in enumerate(PAYLOADS)]
    writer = LakeWriter(tmp_path)
    real = write_file

    def fails_for_verifications(directory: Path, name: str, table: object) -> Path:
        if "/verifications/" in str(directory):
            raise OSError("disk full")
        return real(directory, name, table)  # type: ignore[arg-type]

    monkeypatch.setattr("analytics.lake.write_file", fails_for_verifications)
    with pytest.raises(OSError, match="disk full"):
        writer.write_events(events)
    assert count(tmp_path, "lake_verifications") == 0
    assert count(tmp_path, "events") == len(events)

    monkeypatch.setattr("analytics.lake.write_file", real)
    report = writer.write_events(events)
    assert report.written["verifications"] == 8 and report.written["events"] == 0
    assert report.duplicates["events"] == len(events)
    assert count(tmp_path, "lake_verifications") == 8


def test_a_batch_with_a_duplicate_is_filtered_without_reading_the_partition_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redelivered event in a batch is dropped against the ids the writer knows; the
    partition's files are not read again (that made the lake sink quadratic)."""
    writer = LakeWriter(tmp_path / "lake")
    events = [sample_event(name) for name in PAYLOADS]
    for event in events[:-2]:
        writer.write_events([event])
    reads: list[object] = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda *a, **k: reads.append(a) or real(*a, **k))
    report = writer.write_events([events[0], events[-2], events[-1], events[-1]])
    assert (report.written["events"], report.duplicates["events"]) == (2, 2)
    assert reads == []
    writer.write_events([events[-2]])  # known now: nothing written again
    con = connect(tmp_path / "lake")
    stored = sorted(row[0] for row in con.execute("SELECT id FROM lake_events").fetchall())
    assert stored == sorted(e.id for e in events)

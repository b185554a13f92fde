"""Lake retention: partitions older than the policy, and those dated ahead, are deleted
whole (every table, rollups refreshed); recent ones and each table's seed stay; a second
pass deletes nothing. Real Parquet files, real DuckDB views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from analytics.compaction import compact
from analytics.lake import SEED_DATE, LakeWriter, ensure_lake, partitions
from analytics.retention import date_range, expire, outside
from analytics.sink import maintain_lake
from analytics.views import connect
from tests.factories import sample_event

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


def _write(lake: Path, days_ago: list[int]) -> None:
    events = [
        sample_event(
            "mfa.verification.succeeded",
            subject=f"u-{ago}",
            now=NOW - timedelta(days=ago),
            correlationid=f"login-{ago}",
        )
        for ago in days_ago
    ]
    ensure_lake(lake)
    LakeWriter(lake).write_events(events)


def _days(lake: Path, table: str = "events") -> list[date]:
    return [day for day, _ in partitions(lake, table)]


def _counted(lake: Path) -> int:
    with connect(lake) as con:
        row = con.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def test_outside_keeps_the_seed_and_the_window() -> None:
    window = {"keep_from": date(2026, 1, 1), "keep_until": date(2026, 2, 1)}
    assert not outside(SEED_DATE, **window)
    assert not outside(date(2026, 1, 1), **window) and not outside(date(2026, 2, 1), **window)
    assert outside(date(2025, 12, 31), **window) and outside(date(2026, 2, 2), **window)


def test_old_and_future_partitions_go_recent_ones_stay(tmp_path: Path) -> None:
    """Days 500, 401 and 399 ago, today, and (an attacker's or a broken clock's) 40 days
    ahead; 400 days kept: the two old days and the future one go, from every table."""
    lake = tmp_path / "lake"
    _write(lake, [500, 401, 399, 0, -40])
    compact(lake, min_files=2)  # rollups built over every day
    assert _counted(lake) == 5
    expired, _ = maintain_lake(lake, min_files=8, keep=timedelta(days=400), now=NOW)
    gone = {(e.table, e.day) for e in expired}
    old = [(NOW - timedelta(days=ago)).date() for ago in (500, 401, -40)]
    assert {("events", day) for day in old} <= gone
    assert {("verifications", day) for day in old} <= gone
    assert _days(lake) == [SEED_DATE, (NOW - timedelta(days=399)).date(), NOW.date()]
    assert _counted(lake) == 2
    assert not any((lake / "events" / ".generations").glob(f"date={old[0]}*"))
    assert date_range(lake) == ((NOW - timedelta(days=399)).date(), NOW.date())
    again, _ = maintain_lake(lake, min_files=8, keep=timedelta(days=400), now=NOW)
    assert again == []


def test_no_policy_keeps_everything_and_an_empty_lake_is_fine(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert expire(lake, keep_from=NOW.date(), keep_until=NOW.date()) == []
    assert date_range(lake) is None
    _write(lake, [900, 0])
    assert maintain_lake(lake, min_files=8, keep=None, now=NOW)[0] == []
    assert _counted(lake) == 2

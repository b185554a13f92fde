"""The lake's layout for readers, and the one-pass rewrites of the metric queries.

Compaction sorts a typed table's merged file by the columns the queries filter on and
writes it in small row groups (``events`` stays in time order); the SMS failure rate and
the overview count each challenge once instead of with one distinct count per column.
Both must leave every answer as it was: the rewritten queries are checked against their
distinct-count definitions on a synthetic lake with the awkward rows (null challenge ids,
repeated deliveries).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analytics import compaction
from analytics.compaction import CLUSTER_BY, compact
from analytics.lake import LakeWriter, parquet_files, partition_link
from analytics.queries import Filters, overview_kpis, sms_delivery_failure_rate
from analytics.tables import split_by_date
from analytics.views import connect
from factorstream.bench.lake_data import START, batches, events_table

ROWS = 12_000


def _without_some_challenge_ids(batch: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Every seventh challenge row loses its id (a provider callback without one)."""
    challenges = batch["challenges"]
    every_seventh = pa.array([index % 7 == 0 for index in range(challenges.num_rows)])
    ids = pc.if_else(every_seventh, pa.scalar(None, pa.string()), challenges["challenge_id"])
    index = challenges.schema.get_field_index("challenge_id")
    return {**batch, "challenges": challenges.set_column(index, "challenge_id", ids)}


ROW_GROUP_ROWS = 200
"""Merged row groups in these tests: several per file at this size."""


def _write(path: Path) -> Path:
    writer = LakeWriter(path)
    for batch in batches(events_table(ROWS, days=2), 1500):
        writer.write(_without_some_challenge_ids(batch))
    return path


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("layout") / "lake")


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = _write(tmp_path_factory.mktemp("layout-compacted") / "lake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compaction, "MERGED_ROW_GROUP_ROWS", ROW_GROUP_ROWS)
        assert compact(path, min_files=2)
    return path


def _merged(lake: Path, table: str) -> pq.ParquetFile:
    (path,) = parquet_files(partition_link(lake, table, START.date()).resolve())
    return pq.ParquetFile(path)


@pytest.mark.parametrize("table", ["events", *CLUSTER_BY])
def test_merged_files_are_sorted_by_their_cluster_columns_then_time(
    compacted: Path, table: str
) -> None:
    merged = _merged(compacted, table)
    keys = [*CLUSTER_BY.get(table, ()), "time", "id"]
    rows = merged.read(columns=keys)
    order = pc.sort_indices(rows, [(key, "ascending") for key in keys])
    assert order.equals(pa.array(range(rows.num_rows), pa.uint64()))
    assert merged.metadata.num_rows == rows.num_rows
    sizes = [merged.metadata.row_group(i).num_rows for i in range(merged.num_row_groups)]
    if table == "events":  # pyarrow's default row groups: one per file at this size
        assert sizes == [rows.num_rows]
    else:
        assert sizes[:-1] == [ROW_GROUP_ROWS] * (len(sizes) - 1)
        assert 0 < sizes[-1] <= ROW_GROUP_ROWS


def test_a_status_filter_reads_only_the_row_groups_of_that_status(compacted: Path) -> None:
    merged = _merged(compacted, "challenges")
    status = merged.schema_arrow.get_field_index("status")
    groups = [merged.metadata.row_group(i) for i in range(merged.num_row_groups)]
    statistics = [group.column(status).statistics for group in groups]
    single = [s for s in statistics if s is not None and s.has_min_max and s.min == s.max]
    assert len(groups) >= 6 and len(single) >= len(groups) - 3  # at most one per boundary


@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters(tenant="tenant-2"),
        Filters(application="app-1", since=START.replace(hour=7, microsecond=123)),
        Filters(until=datetime(2026, 10, 2, 3, tzinfo=UTC)),
    ],
    ids=["all", "tenant", "application-since", "until"],
)
@pytest.mark.parametrize("layout", ["as-written", "compacted"])
def test_sms_failure_rates_equal_their_distinct_count_definition(
    lake: Path, compacted: Path, filters: Filters, layout: str
) -> None:
    con = connect(compacted if layout == "compacted" else lake)
    params = filters.bind("tenant", "since", "until", "application")
    where = """channel = 'sms' AND status IN ('sent', 'delivery_failed')
      AND ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"""
    expected = _fetch(
        con,
        f"""SELECT date AS day, provider, count(DISTINCT challenge_id) AS attempted,
            count(DISTINCT challenge_id) FILTER (WHERE status = 'delivery_failed') AS failed,
            count(DISTINCT challenge_id) FILTER (WHERE status = 'delivery_failed')
                / count(DISTINCT challenge_id) AS failure_rate
        FROM lake_challenges
        WHERE {where} AND ($application IS NULL OR application = $application)
        GROUP BY ALL ORDER BY day, provider""",  # noqa: S608 - constant text
        params,
    )
    assert not expected.empty
    pd.testing.assert_frame_equal(sms_delivery_failure_rate(con, filters), expected)
    rate = _fetch(
        con,
        f"""SELECT count(DISTINCT challenge_id) FILTER (WHERE status = 'delivery_failed')
            / nullif(count(DISTINCT challenge_id), 0) AS sms_delivery_failure_rate
        FROM lake_challenges WHERE {where}""",  # noqa: S608 - constant text
        {name: value for name, value in params.items() if name != "application"},
    )
    p50 = _fetch(
        con,
        """SELECT quantile_cont(time_to_complete_ms, 0.5) FILTER (WHERE success)
            AS p50_time_to_complete_ms
        FROM verifications
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)""",
        params,
    )
    overview = overview_kpis(con, filters)
    pd.testing.assert_frame_equal(overview[["sms_delivery_failure_rate"]], rate)
    pd.testing.assert_frame_equal(overview[["p50_time_to_complete_ms"]], p50)
    con.close()


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    return con.execute(sql, params).df()


def test_split_by_date_cuts_at_utc_midnight_on_either_side_of_the_epoch() -> None:
    stamps = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 2, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 11, 3, tzinfo=UTC),
    ]
    table = pa.table({"time": pa.array(stamps, pa.timestamp("us", tz="UTC"))})
    parts = split_by_date(table)
    assert [(str(day), part.num_rows) for day, part in parts] == [
        ("1969-12-31", 1),
        ("1970-01-01", 1),
        ("2026-11-02", 1),
        ("2026-11-03", 1),
    ]
    (only,) = split_by_date(table.slice(2, 1))
    assert str(only[0]) == "2026-11-02"

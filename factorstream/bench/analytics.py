"""``factorstream bench analytics``: lake ingest and dashboard query latency.

1. Ingest: the same micro-batches (``batch_rows`` events each, with their typed-table
   rows; synthetic, see ``lake_data``) written by ``analytics.lake.LakeWriter`` (date
   partitions, dedupe by id, temporary name + rename, a batch's files written
   concurrently) vs bare ``pyarrow.parquet.write_table`` of each table's batch to one
   file, one after another. Goal: ≥ 0.7× the baseline's rows/s. A third line writes the
   bare files as concurrently as the writer does, so the writer's own cost shows too.
2. Queries: the lake is compacted (as the background compaction would: partitions merged,
   then the rollups built, ``analytics.rollups``), then every metric query of
   ``analytics.queries.QUERIES`` runs over it (no filters: the whole lake, the worst case)
   and its p50 latency is compared with a bare ``SELECT count(*) FROM events`` scan, the
   floor. Goal: every query's p50 ≤ 300 ms. Latencies are shown as queries/min (60 / p50
   in seconds), so the table reads like the other benchmarks (more is better). The notes
   add each query's p50 over the lake's last seven days (whole days, as the dashboard's
   date range sends them), and over the whole lake again after one more micro-batch of
   the newest day: as between two compactions of a live lake, when that day is read from
   its files, not its rollup.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from analytics.compaction import compact
from analytics.lake import WRITE_THREADS, LakeWriter
from analytics.queries import QUERIES, Filters
from analytics.views import connect, fetch
from factorstream.bench import BenchResult, Measurement, best_rates
from factorstream.bench.lake_data import batches, events_table

FULL_ROWS: Final = 10_000_000
QUICK_ROWS: Final = 20_000
LATENCY_GOAL_S: Final = 0.3
WINDOW: Final = timedelta(days=7)
INGEST_GOAL: Final = 0.7
LIVE_BATCH_ROWS: Final = 5000


def _rows(batch: dict[str, pa.Table]) -> int:
    return sum(table.num_rows for table in batch.values())


def ingest(micro_batches: list[dict[str, pa.Table]], *, workdir: Path, rounds: int) -> BenchResult:
    """Lake writer vs bare ``write_table`` over the same batches, ``rounds`` interleaved."""
    run_id = iter(range(1_000_000))

    def lake() -> int:
        writer = LakeWriter(workdir / f"lake-{next(run_id)}")
        return sum(sum(writer.write(batch).written.values()) for batch in micro_batches)

    def bare(pool: ThreadPoolExecutor | None = None) -> int:
        target = workdir / f"bare-{next(run_id)}"
        target.mkdir()
        for number, batch in enumerate(micro_batches):
            jobs = [(rows, target / f"{table}-{number}.parquet") for table, rows in batch.items()]
            if pool is None:
                for rows, path in jobs:
                    pq.write_table(rows, path)
            else:
                list(pool.map(lambda job: pq.write_table(*job), jobs))
        return sum(_rows(batch) for batch in micro_batches)

    threaded = f"pyarrow write_table, {WRITE_THREADS} threads"
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        rates = best_rates(
            {
                "lake writer": lake,
                "pyarrow write_table": bare,
                threaded: lambda: bare(pool),
            },
            rounds=rounds,
        )
    return BenchResult(
        bench="analytics ingest",
        baseline=rates["pyarrow write_table"],
        contenders=[rates["lake writer"], rates[threaded]],
        goal_ratio=INGEST_GOAL,
        goal_text="≥ 0.7× bare pyarrow.parquet.write_table",
        notes={
            "batches": f"{len(micro_batches)} micro-batches, rows over all tables",
            "lake writer": "date partitions, dedupe by event id, temporary name + rename; "
            f"a batch's files written on {WRITE_THREADS} threads",
            threaded: "the same files written as concurrently as the lake writer does: "
            "the lake writer's own cost is its ratio to this line",
        },
        unit="rows/s",
    )


def _p50(run: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    run()  # warm: file listing, metadata cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def query_latency(
    lake: Path, *, events: int, repeats: int, batch_rows: int = LIVE_BATCH_ROWS
) -> BenchResult:
    """p50 latency of every metric query vs a bare ``count(*)`` scan (compacted lake); then
    again with one micro-batch of ``batch_rows`` events written since the compaction."""
    started = time.perf_counter()
    merged = compact(lake, min_files=2)
    compaction_s = time.perf_counter() - started
    con = connect(lake)
    floor, _ = _p50(lambda: fetch(con, "SELECT count(*) FROM events"), repeats)
    end = fetch(con, "SELECT max(time) AS end FROM events")["end"].iloc[0].to_pydatetime()
    # the last seven days as the dashboard's date range sends them: whole UTC days
    newest = datetime.combine(end.date(), datetime.min.time(), UTC)
    week = Filters(since=newest + timedelta(days=1) - WINDOW, until=newest + timedelta(days=1))

    def p50(filters: Filters) -> dict[str, float]:
        return {
            name: _p50(lambda query=query: query(con, filters), repeats)[0]  # type: ignore[misc]
            for name, query in QUERIES.items()
        }

    latencies, last_week = p50(Filters()), p50(week)
    arriving = events_table(batch_rows, seed=8, days=1, start=newest, first=events)
    for batch in batches(arriving, batch_rows):
        LakeWriter(lake).write(batch)
    live = p50(Filters())
    con.close()
    slowest = sorted(latencies, key=lambda name: latencies[name], reverse=True)
    contenders = [Measurement(name, 60 / latencies[name], repeats, events) for name in slowest]
    baseline = Measurement("count(*) scan (floor)", 60 / floor, repeats, events)
    notes = {
        name: f"p50 {latencies[name] * 1000:,.0f} ms, last 7 days "
        f"{last_week[name] * 1000:,.0f} ms, with a batch since compaction "
        f"{live[name] * 1000:,.0f} ms"
        for name in slowest
    }
    notes["count(*) floor"] = f"p50 {floor * 1000:,.0f} ms"
    notes["compaction"] = (
        f"{len(merged)} partitions merged and the sign-in rollups built in {compaction_s:,.1f} s"
    )
    return BenchResult(
        bench=f"analytics queries over {events:,} events",
        baseline=baseline,
        contenders=contenders,
        goal_ratio=(60 / LATENCY_GOAL_S) / baseline.events_per_s,
        goal_text="the slowest query's p50 ≤ 300 ms, i.e. ≥ 200 queries/min",
        notes=notes,
        unit="queries/min",
    )


def run(*, quick: bool, rows: int | None = None, batch_rows: int = 5000) -> list[BenchResult]:
    """Both benchmarks over ``rows`` synthetic events (default 10 M, or 20 000 quick)."""
    total = rows or (QUICK_ROWS if quick else FULL_ROWS)
    # about 330 000 events a day, as 10 M over 30 days: small runs keep the same density
    events = events_table(total, days=max(1, min(30, total // 330_000)))
    micro_batches = list(batches(events, batch_rows))
    del events
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as directory:
        workdir = Path(directory)
        ingest_result = ingest(micro_batches, workdir=workdir, rounds=3 if quick else 1)
        lake = workdir / "lake-0"
        queries_result = query_latency(lake, events=total, repeats=3 if quick else 5)
    return [ingest_result, queries_result]

"""Compaction: merge a date partition's small files into one, atomically for readers.

For each table and date partition with at least ``min_files`` files, under the lake's
exclusive lock (writers wait): read the partition's files, drop repeated event ids, write
the merged file — a typed table's sorted and cut into row groups so that DuckDB skips
what a query filters out (:data:`CLUSTER_BY`) — into a *new* generation directory
(temporary name, then rename), point the partition's ``date=`` link at it with one
``rename``, and delete the old generation. A reader lists either the old files or the
merged file, never both; one that listed the old files just before the swap fails to open
them and retries (``analytics.views.fetch``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics import rollups
from analytics.columns import SCHEMAS, TABLES
from analytics.lake import (
    GENERATIONS,
    SEED_DATE,
    batch_name,
    lake_lock,
    new_generation,
    parquet_files,
    partition_link,
    partitions,
    point_link,
    write_file,
)
from analytics.tables import empty


@dataclass(frozen=True)
class Compacted:
    """One merged partition: how many files became one file of ``rows`` rows."""

    table: str
    day: date
    files: int
    rows: int


MERGED_ROW_GROUP_ROWS: Final = 32_768
"""Rows per row group of a merged file of a typed table (a busy day makes a few)."""
CLUSTER_BY: Final[Mapping[str, tuple[str, ...]]] = {
    "verifications": ("success",),
    "challenges": ("status", "channel"),
    "enrollments": ("status",),
    "lockouts": ("action",),
    "risk_detections": ("detection",),
}
"""What a merged file of a typed table is sorted by before time: the columns the metric
queries filter on, so that the rows a query reads (the successes, the SMS deliveries, the
issued challenges, …) sit together in a few row groups and the others are skipped by their
statistics. ``events`` stays in time order, in pyarrow's default row groups: its queries
filter on many columns at once, and its scans and joins measured no faster in small row
groups (the join of ``impossible_travel_arcs`` slower)."""


def merge(tables: list[pa.Table], table: str) -> pa.Table:
    """Concatenate ``tables`` into ``table``'s schema (missing columns null), one row per id,
    sorted by ``table``'s :data:`CLUSTER_BY` columns, then time and id."""
    schema = SCHEMAS[table]
    merged = pa.concat_tables(
        [t.select([n for n in schema.names if n in t.column_names]) for t in tables],
        promote_options="permissive",
    )
    for name in schema.names:
        if name not in merged.column_names:
            merged = merged.append_column(name, pa.nulls(merged.num_rows, schema.field(name).type))
    merged = merged.select(schema.names).cast(schema)
    keys = (*CLUSTER_BY.get(table, ()), "time", "id")
    merged = merged.take(pc.sort_indices(merged, [(key, "ascending") for key in keys]))
    ids = merged.column("id").to_pylist()
    first = {event_id: index for index, event_id in reversed(list(enumerate(ids)))}
    if len(first) < len(ids):
        merged = merged.take(pa.array(sorted(first.values()), pa.int64()))
    return merged


def compact_partition(lake: Path, table: str, day: date, link: Path, *, min_files: int) -> int:
    """Merge one partition if it holds at least ``min_files`` files; the files merged."""
    with lake_lock(lake, exclusive=True):
        old = link.resolve(strict=True)
        files = parquet_files(old)
        if len(files) < min_files:
            return 0
        merged = merge([pq.ParquetFile(path).read() for path in files], table)
        replace_partition(lake, table, day, link, merged)
    return len(files)


def replace_partition(lake: Path, table: str, day: date, link: Path, rows: pa.Table) -> None:
    """Swap the partition behind ``link`` for one file of ``rows`` (a new generation; the
    old one deleted). The caller holds the lake's lock exclusively."""
    old = link.resolve(strict=True)
    generation = new_generation(lake, table, day)
    name = batch_name(rows.column("id").to_pylist(), generation.name)
    row_groups = MERGED_ROW_GROUP_ROWS if table in CLUSTER_BY else None
    write_file(generation, name, rows, row_group_rows=row_groups)
    point_link(link, generation)
    shutil.rmtree(old)


def refresh_seeds(lake: Path) -> list[str]:
    """Give each table's seed partition every column of the table's schema: a lake made
    before a column was added keeps a seed file without it, and until a file with the
    column is written, the views (and a query naming the column) would not have it. The
    seed is swapped like a compacted partition (a new generation). The tables refreshed."""
    refreshed = []
    for table in TABLES:
        link = partition_link(lake, table, SEED_DATE)
        if not link.is_symlink():
            continue
        with lake_lock(lake, exclusive=True):
            files = parquet_files(link.resolve(strict=True))
            names = set().union(*(pq.read_schema(path).names for path in files))
            if set(SCHEMAS[table].names) <= names:
                continue
            replace_partition(lake, table, SEED_DATE, link, empty(table))
        refreshed.append(table)
    return refreshed


def compact(lake: Path, *, min_files: int) -> list[Compacted]:
    """Compact every table's partitions that hold at least ``min_files`` files, then bring
    the seed partitions' columns (:func:`refresh_seeds`) and the sign-in rollups
    (``analytics.rollups``) up to date."""
    refresh_seeds(lake)
    done = []
    for table in TABLES:
        for day, link in partitions(lake, table):
            merged = compact_partition(lake, table, day, link, min_files=min_files)
            if merged:
                rows = pq.read_metadata(next(iter(parquet_files(link.resolve())))).num_rows
                done.append(Compacted(table, day, merged, rows))
    _remove_orphans(lake)
    rollups.refresh(lake)
    return done


def _remove_orphans(lake: Path) -> None:
    """Delete generation directories no link points to (left by a crash mid-compaction)."""
    with lake_lock(lake, exclusive=True):
        for table in TABLES:
            live = {link.resolve() for _, link in partitions(lake, table)}
            for generation in (lake / table / GENERATIONS).glob("date=*"):
                if generation.resolve() not in live:
                    shutil.rmtree(generation)

"""Writing the lake: hive-partitioned Parquet, complete files only, idempotent by event id.

Readers see ``<lake>/<table>/date=YYYY-MM-DD/<name>.parquet``; each ``date=`` is a
symbolic link to a generation directory that compaction (``analytics/compaction.py``)
swaps with one ``rename``, so a reader never counts a row twice. A file is written under
a dot-prefixed temporary name and renamed into place. Before writing, a partition's rows
whose ``id`` it already holds are dropped (the writer remembers each partition's ids, at
most ``max_partitions`` partitions, least-recently-used out), so a re-delivered batch adds
no row twice. Writers share ``flock`` on ``<lake>/.lake.lock``; a compaction holds it
exclusively. The design in full: docs/lake.md#how-the-tables-are-written.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from analytics.columns import TABLES
from analytics.tables import empty, flatten, split_by_date
from schemas import Event

LOCK_FILE: Final = ".lake.lock"
WRITE_THREADS: Final = min(4, os.cpu_count() or 1)
"""Files of one batch written at once (one per table and date)."""
GENERATIONS: Final = ".generations"
SEED_DATE: Final = date(1970, 1, 1)
"""Each table holds an empty ``schema.parquet`` here, so its view exists (typed) before
any event arrives: DuckDB refuses a glob that matches no file."""
SEED_FILE: Final = "schema.parquet"


@contextmanager
def lake_lock(lake: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the lake's lock: shared for writers, exclusive for a compaction swap."""
    lake.mkdir(parents=True, exist_ok=True)
    fd = os.open(lake / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def partitions(lake: Path, table: str) -> list[tuple[date, Path]]:
    """``table``'s date partitions: each day and the link readers see for it."""
    found = []
    for link in sorted((lake / table).glob("date=*")):
        if link.is_symlink():
            found.append((date.fromisoformat(link.name.removeprefix("date=")), link))
    return found


def partition_link(lake: Path, table: str, day: date) -> Path:
    """The path readers see for ``table``'s partition of ``day`` (a symbolic link)."""
    return lake / table / f"date={day.isoformat()}"


def new_generation(lake: Path, table: str, day: date) -> Path:
    """A fresh, empty generation directory for ``table``'s partition of ``day``."""
    directory = lake / table / GENERATIONS / f"date={day.isoformat()}.{uuid.uuid4().hex[:12]}"
    directory.mkdir(parents=True)
    return directory


def point_link(link: Path, generation: Path) -> None:
    """Point ``link`` at ``generation`` atomically (a relative link: the lake can move)."""
    temporary = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link")
    os.symlink(os.path.relpath(generation, link.parent), temporary)
    os.replace(temporary, link)


def current_generation(lake: Path, table: str, day: date) -> Path:
    """The generation directory of ``table``'s partition of ``day``, created if missing."""
    link = partition_link(lake, table, day)
    try:
        return link.parent / os.readlink(link)
    except FileNotFoundError:
        pass
    generation = new_generation(lake, table, day)
    try:
        os.symlink(os.path.relpath(generation, link.parent), link)
    except FileExistsError:  # another writer created it first: use theirs
        generation.rmdir()
        return link.parent / os.readlink(link)
    return generation


def write_file(
    directory: Path, name: str, table: pa.Table, *, row_group_rows: int | None = None
) -> Path:
    """Write ``table`` as ``directory/name`` under a temporary name, then rename it.

    Micro-batches are written with pyarrow's defaults (one row group). ``row_group_rows``
    is for merged files: smaller row groups, each with min/max statistics and a page index,
    let DuckDB skip what a filter excludes and share a file between its threads.
    """
    folder = os.fspath(directory)  # plain strings: this runs once per file of every batch
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    if row_group_rows is None:
        pq.write_table(table, temporary)
    else:
        pq.write_table(table, temporary, row_group_size=row_group_rows, write_page_index=True)
    os.replace(temporary, os.path.join(folder, name))
    return directory / name


def parquet_names(directory: Path) -> list[str]:
    """Names of the complete data files of a generation (temporary names are dot-prefixed)."""
    return sorted(
        name for name in os.listdir(directory) if name.endswith(".parquet") and name[0] != "."
    )


def parquet_files(directory: Path) -> list[Path]:
    """The complete data files of a generation."""
    return [directory / name for name in parquet_names(directory)]


def _has_partitions(lake: Path, table: str) -> bool:
    return (lake / table).is_dir() and any((lake / table).glob("date=*"))


def lake_ready(lake: Path) -> bool:
    """Whether every table of the lake has a partition (its views can be made)."""
    return all(_has_partitions(lake, table) for table in TABLES)


def ensure_lake(lake: Path) -> None:
    """Create the lake and each table's seed partition (an empty, typed file)."""
    with lake_lock(lake, exclusive=False):
        for table in TABLES:
            if _has_partitions(lake, table):
                continue
            generation = current_generation(lake, table, SEED_DATE)
            if not (generation / SEED_FILE).exists():
                write_file(generation, SEED_FILE, empty(table))


def batch_name(ids: list[str], generation: str = "") -> str:
    """A file name determined by the rows' ids (and, for a rewritten partition, by its new
    ``generation``'s name): the same rows always make the same name, and a partition that
    compaction or an erasure rewrites never reuses one. So no path through a ``date=``
    link ever names two different files: a reader that listed a file swapped away fails to
    open it and plans again, instead of reading one file's footer and another's pages."""
    named = [generation, *sorted(ids)] if generation else sorted(ids)
    digest = hashlib.sha256("\n".join(named).encode()).hexdigest()
    return f"{digest[:32]}.parquet"


@dataclass
class PartitionIds:
    """What the writer knows to be in one partition generation: file names and ids.

    ``link`` is the partition's ``date=`` link and ``target`` where it pointed when the
    generation was learnt: a different target later means a compaction swapped it.
    """

    link: str
    target: str
    files: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)

    @property
    def generation(self) -> Path:
        return Path(os.path.dirname(self.link), self.target)

    def is_current(self) -> bool:
        """Whether the link still points at this generation."""
        try:
            return os.readlink(self.link) == self.target
        except FileNotFoundError:
            return False

    def refresh(self) -> None:
        """Learn the ids of files in the generation this writer has not seen yet."""
        generation = self.generation
        for name in parquet_names(generation):
            if name not in self.files:
                column = pq.ParquetFile(generation / name).read(columns=["id"]).column("id")
                self.ids.update(column.to_pylist())
                self.files.add(name)


@dataclass(frozen=True)
class WriteReport:
    """Rows written and rows dropped as already present, per table, and the files written."""

    written: Mapping[str, int]
    duplicates: Mapping[str, int]
    files: tuple[Path, ...]


class LakeWriter:
    """Appends micro-batches of table rows to the lake (see the module docstring)."""

    def __init__(self, lake: Path, *, max_partitions: int = 16) -> None:
        self.lake = lake
        self.max_partitions = max_partitions
        self._known: OrderedDict[tuple[str, date], PartitionIds] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="lake-write")
        ensure_lake(lake)

    def _partition(self, table: str, day: date) -> PartitionIds:
        key = (table, day)
        known = self._known.get(key)
        if known is None or not known.is_current():
            current_generation(self.lake, table, day)  # creates the partition if missing
            link = os.fspath(partition_link(self.lake, table, day))
            known = PartitionIds(link, os.readlink(link))
        self._known[key] = known
        self._known.move_to_end(key)
        while len(self._known) > self.max_partitions:
            self._known.popitem(last=False)
        known.refresh()
        return known

    def write_events(self, events: Iterable[Event]) -> WriteReport:
        """Flatten decoded ``events`` into the lake's tables and append them."""
        return self.write(flatten(events))

    def write(self, tables: Mapping[str, pa.Table]) -> WriteReport:
        """Append each table's rows to their date partitions; rows already there are dropped.

        The batch's files (one per table and date) are written concurrently: pyarrow
        encodes and writes without holding the GIL.
        """
        written = dict.fromkeys(tables, 0)
        duplicates = dict.fromkeys(tables, 0)
        claims: list[tuple[str, date, PartitionIds, str, pa.Table]] = []
        with lake_lock(self.lake, exclusive=False):
            for table, rows in tables.items():
                for day, part in split_by_date(rows):
                    fresh, ids, known = self._claim(table, day, part)
                    duplicates[table] += part.num_rows - fresh.num_rows
                    if fresh.num_rows:
                        claims.append((table, day, known, batch_name(ids), fresh))
            outcomes = list(
                self._pool.map(
                    _written_or_error,
                    [(known.generation, name, rows) for _, _, known, name, rows in claims],
                )
            )
            files: list[Path] = []
            error: BaseException | None = None
            for (table, day, known, name, rows), outcome in zip(claims, outcomes, strict=True):
                if isinstance(outcome, BaseException):  # claimed, not written: forget the ids
                    self._known.pop((table, day), None)
                    error = error or outcome
                    continue
                known.files.add(name)
                written[table] += rows.num_rows
                files.append(outcome)
            if error is not None:
                raise error
        return WriteReport(written, duplicates, tuple(files))

    def _claim(
        self, table: str, day: date, part: pa.Table
    ) -> tuple[pa.Table, list[str], PartitionIds]:
        """The rows of ``part`` not yet in the partition, their ids (now remembered as
        written), and the partition.

        The usual case costs a disjointness check and one set update (the set grows by as
        many ids as the batch holds). Otherwise the batch is filtered row by row against
        the ids known before it (the set is current: :meth:`_partition` has just read the
        files other writers added). Reading the whole partition again instead, as this did
        before, made every batch holding a duplicate cost as much as all the partition's
        files: quadratic over a day (``bench pipeline``'s lake sink spent 90 % there).
        """
        known = self._partition(table, day)
        ids: list[str] = part.column("id").to_pylist()
        seen = known.ids
        if seen.isdisjoint(ids):
            before = len(seen)
            seen.update(ids)
            if len(seen) - before == len(ids):
                return part, ids, known
            seen.difference_update(ids)  # a repeat within the batch: none was known before
        fresh, ids = _new_rows(part, ids, seen)
        seen.update(ids)
        return fresh, ids, known


def _written_or_error(job: tuple[Path, str, pa.Table]) -> Path | BaseException:
    """``write_file`` for the pool: its path, or the error (raised by ``write`` after
    every file of the batch has settled)."""
    directory, name, rows = job
    try:
        return write_file(directory, name, rows)
    except Exception as error:  # noqa: BLE001 - handed back to the caller, not swallowed
        return error


def _new_rows(part: pa.Table, ids: list[str], seen: set[str]) -> tuple[pa.Table, list[str]]:
    """``part`` (whose ids are ``ids``) without rows whose id is in ``seen`` or repeats an
    earlier row's id, and the ids of the rows kept."""
    keep: list[int] = []
    batch: set[str] = set()
    for index, event_id in enumerate(ids):
        if event_id not in seen and event_id not in batch:
            batch.add(event_id)
            keep.append(index)
    if len(keep) == len(ids):
        return part, ids
    return part.take(pa.array(keep, pa.int64())), [ids[index] for index in keep]

"""Export ledger entries as JSON Lines, CSV, Parquet or OCSF (see ``audit.ocsf``).

Rows come as :class:`LedgerRow`: the CloudEvent as a JSON object, personal fields
decrypted or, where the subject's key was destroyed, :data:`ERASED`. Every format marks
erased paths, and the writers re-apply the mark, so an erased value never leaks.

Table formats (CSV, Parquet) share one column set, derived from the registry's payload
schemas, so rows of different types line up: ``sequence, recorded_at``, the envelope
attributes, every dotted ``data.*`` leaf of every registered payload (sorted), then
``extra`` (JSON of any path no registered payload declares) and ``erased``. Lists and
open maps are JSON text. In CSV an erased value reads ``[erased]``; in Parquet, whose
columns are typed, it reads ``[erased]`` in text columns and null in the others (the
``erased`` column names every erased path either way). A CSV text cell that a spreadsheet
would run as a formula (it starts with ``= + - @``, a tab or a carriage return) is written
after an apostrophe, as is one that starts with an apostrophe: strip one leading
apostrophe to read the value back.

Every format is written to a temporary name beside ``out`` and renamed into place, so a
failed export never leaves a partial file. JSON Lines and CSV stream row by row; Parquet
writes row groups of :data:`PARQUET_ROW_GROUP` rows.
"""

from __future__ import annotations

import csv
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from audit import ocsf
from audit.rows import (
    COLUMN_INDEX,
    COLUMNS,
    ERASED,
    ColumnKind,
    ExportFilter,
    LedgerRow,
    flatten,
    iso_utc,
    with_erasures,
)

ExportFormat = Literal["jsonl", "csv", "parquet", "ocsf"]
PARQUET_ROW_GROUP = 10_000


_encoder = msgspec.json.Encoder()


def _json(value: Any) -> str:
    return _encoder.encode(value).decode()


# -- writers ----------------------------------------------------------------------------


def write_export(
    rows: Iterable[LedgerRow],
    *,
    fmt: ExportFormat,
    out: Path,
    where: ExportFilter | None = None,
) -> int:
    """Write the ``rows`` that match ``where`` to ``out`` in ``fmt``; returns records written.

    For ``ocsf`` only events with an OCSF mapping that ``audit.ocsf`` supports are
    written, so the count can be lower than the rows matched.
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {sorted(_WRITERS)}")
    selected = rows if where is None else (row for row in rows if where.matches(row))
    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    partial = Path(name)
    try:
        written = writer(selected, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _write_jsonl(rows: Iterable[LedgerRow], path: Path) -> int:
    return _write_lines(path, (_jsonl_record(row) for row in rows))


def _jsonl_record(row: LedgerRow) -> dict[str, Any]:
    return {
        "sequence": row.sequence,
        "recorded_at": iso_utc(row.recorded_at),
        "event": with_erasures(row),
        "erased": list(row.erased),
    }


def _write_ocsf(rows: Iterable[LedgerRow], path: Path) -> int:
    records = (ocsf.ocsf_record(row) for row in rows)
    return _write_lines(path, (record for record in records if record is not None))


def _write_lines(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    written = 0
    with path.open("wb") as sink:
        for record in records:
            sink.write(_encoder.encode(record) + b"\n")
            written += 1
    return written


def _write_csv(rows: Iterable[LedgerRow], path: Path) -> int:
    written = 0
    with path.open("w", encoding="utf-8", newline="") as sink:
        table = csv.writer(sink)
        table.writerow(COLUMNS)
        blank = [""] * len(COLUMNS)
        for row in rows:
            cells = blank.copy()
            for name, value in flatten(row).items():
                cells[COLUMN_INDEX[name]] = _csv_cell(value)
            table.writerow(cells)
            written += 1
    return written


FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV
injection): ``=HYPERLINK(…)`` in a User-Agent would be a link in the auditor's sheet."""


def spreadsheet_safe(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: one leading apostrophe before a formula
    start, and before an apostrophe (so a reader strips exactly one, and gets ``text``)."""
    return "'" + text if text.startswith(FORMULA_STARTS) or text.startswith("'") else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _json(value)  # a number, negative ones too, is no formula
    return spreadsheet_safe(value if isinstance(value, str) else _json(value))


PARQUET_TYPES: Mapping[ColumnKind, Any] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


def parquet_schema() -> Any:
    """The Arrow schema of Parquet exports."""
    fields = [pa.field(name, PARQUET_TYPES[kind]) for name, kind in COLUMNS.items()]
    fields[-1] = pa.field("erased", pa.list_(pa.string()))
    return pa.schema(fields)


def _parquet_value(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        return _json(value)
    if value == ERASED and kind != "string":
        return None  # a typed column cannot hold the mark; the erased column names the path
    if kind == "timestamp":
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    return value


def _write_parquet(rows: Iterable[LedgerRow], path: Path) -> int:
    schema = parquet_schema()
    flats = (flatten(row) for row in rows)
    written = 0
    with pq.ParquetWriter(path, schema) as parquet:
        while batch := list(itertools.islice(flats, PARQUET_ROW_GROUP)):
            parquet.write_table(pa.Table.from_pydict(_parquet_columns(batch), schema=schema))
            written += len(batch)
    return written


def _parquet_columns(batch: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise values of ``batch``; a column a row lacks is null in that row."""
    columns: dict[str, list[Any]] = {name: [None] * len(batch) for name in COLUMNS}
    for index, flat in enumerate(batch):
        for name, value in flat.items():
            columns[name][index] = _parquet_value(COLUMNS[name], value)
        columns["erased"][index] = flat["erased"]
    return columns


_WRITERS: Mapping[str, Callable[[Iterable[LedgerRow], Path], int]] = {
    "jsonl": _write_jsonl,
    "csv": _write_csv,
    "parquet": _write_parquet,
    "ocsf": _write_ocsf,
}

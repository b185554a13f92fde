"""Erasure in the lake: a subject's personal data redacted from every table's files.

The ledger crypto-shreds an erased subject (``audit erase``); the lake holds the same
events flattened, in clear, so the lake sink redacts it too when the
``privacy.subject.erased`` event reaches it. For each table with personal columns
(:data:`analytics.columns.PERSONAL`) and each date partition holding a row of the subject
(``tenant`` and ``subject`` equal), under the lake's exclusive lock: the partition's files
are merged (as compaction does), the subject's rows get ``null`` in every personal column
— ``data`` keeps its payload with the personal fields ``null`` (``schemas.registry``
names them), a risk detection's ``summary`` becomes :data:`ERASED` — and the result
replaces the partition as a new generation, swapped in with one ``rename``. Rows stay (the
counts, rates and detections of the dashboard do not change); only who, where and which
device go.

Redacting again changes nothing and rewrites nothing, so a re-delivered erasure event is
harmless; an event of the subject re-delivered after the erasure is not written again
(the lake writer drops ids a partition already holds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.columns import PERSONAL, SCHEMAS
from analytics.compaction import merge, partitions, replace_partition
from analytics.lake import lake_lock, parquet_files
from schemas.registry import PathTree, personal_tree

ERASED: Final = "[personal data erased]"
"""What an erased subject's risk detections say instead of their summary."""


@dataclass(frozen=True)
class Redacted:
    """One partition rewritten: ``rows`` rows of the subject redacted."""

    table: str
    day: date
    rows: int


def redact_subject(lake: Path, tenant: str, subject: str) -> list[Redacted]:
    """Redact ``tenant``/``subject``'s personal data in every table of ``lake``."""
    done = []
    for table in PERSONAL:
        for day, link in partitions(lake, table):
            rows = _redact_partition(lake, table, day, link, tenant, subject)
            if rows:
                done.append(Redacted(table, day, rows))
    return done


def _redact_partition(
    lake: Path, table: str, day: date, link: Path, tenant: str, subject: str
) -> int:
    with lake_lock(lake, exclusive=True):
        files = parquet_files(link.resolve(strict=True))
        if not any(_holds(path, tenant, subject) for path in files):
            return 0
        merged = merge([pq.ParquetFile(path).read() for path in files], SCHEMAS[table])
        redacted, rows = redact_rows(table, merged, tenant, subject)
        if rows:
            replace_partition(lake, table, day, link, redacted)
        return rows


def _holds(path: Path, tenant: str, subject: str) -> bool:
    keys = pq.ParquetFile(path).read(columns=["tenant", "subject"])
    return bool(pc.any(_mask(keys, tenant, subject)).as_py())


def _mask(rows: pa.Table, tenant: str, subject: str) -> pa.ChunkedArray:
    same = pc.and_(pc.equal(rows["tenant"], tenant), pc.equal(rows["subject"], subject))
    return pc.fill_null(same, False)


def redact_rows(table: str, rows: pa.Table, tenant: str, subject: str) -> tuple[pa.Table, int]:
    """``rows`` of ``table`` with the subject's personal columns redacted, and how many of
    the subject's rows changed (0: ``rows`` is returned as it was)."""
    mask = _mask(rows, tenant, subject)
    if not pc.any(mask).as_py():
        return rows, 0
    redacted = rows
    for name in sorted(PERSONAL.get(table, ())):
        index = redacted.schema.get_field_index(name)
        column = redacted.column(name)
        if name == "data":
            fresh = _redact_payloads(column, redacted["type"], mask)
        elif name == "summary":
            fresh = pc.if_else(mask, pa.scalar(ERASED, column.type), column)
        else:
            fresh = pc.if_else(mask, pa.scalar(None, column.type), column)
        redacted = redacted.set_column(index, redacted.field(index), fresh)
    if redacted.equals(rows):
        return rows, 0
    changed = sum(
        1
        for before, after in zip(
            rows.filter(mask).to_pylist(), redacted.filter(mask).to_pylist(), strict=True
        )
        if before != after
    )
    return redacted, changed


def _redact_payloads(
    column: pa.ChunkedArray, types: pa.ChunkedArray, mask: pa.ChunkedArray
) -> pa.Array:
    values = column.to_pylist()
    for index, (kind, erase) in enumerate(zip(types.to_pylist(), mask.to_pylist(), strict=True)):
        if erase and values[index] is not None:
            values[index] = redact_payload(kind, values[index])
    return pa.array(values, column.type)


def redact_payload(event_type: str, payload: str) -> str:
    """A payload (JSON text) with the personal fields of ``event_type`` set to ``null``."""
    document = json.loads(payload)
    _null(document, personal_tree(event_type))
    return json.dumps(document, separators=(",", ":"))


def _null(node: Any, tree: PathTree) -> None:
    if not isinstance(node, dict):
        return
    for name, below in tree.items():
        if name not in node or node[name] is None:
            continue
        if below is None:
            node[name] = None
        else:
            _null(node[name], below)

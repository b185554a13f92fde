"""Exports: auditors and admins get the file; a SOC analyst is refused on the server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from dash import Dash

from audit.checkpoints import Checkpoint
from audit.export import ExportFilter, ExportFormat, LedgerRow
from dashboard.exports import ExportRefused, export_bytes, export_filter, grid_row
from dashboard.filters import DashboardFilters
from dashboard.ledger import Verification
from tests.unit.dashboard.conftest import T0, AddUser, Clock, callback_body, sign_in


class RecordingLedger:
    """A ledger that records exports (and writes a one-line file)."""

    def __init__(self) -> None:
        self.exports: list[tuple[ExportFilter, str]] = []

    def recent(self, where: ExportFilter, *, limit: int) -> list[LedgerRow]:
        return []

    def latest_checkpoint(self) -> Checkpoint | None:
        return None

    def size(self) -> int:
        return 0

    def verify(self) -> Verification:
        return Verification(True, "")

    def export(self, where: ExportFilter, *, fmt: ExportFormat, out: Path) -> int:
        self.exports.append((where, fmt))
        out.write_text("{}\n")
        return 1


def test_soc_role_is_refused_before_the_ledger_is_read(
    add_user: AddUser,
) -> None:
    ledger = RecordingLedger()
    soc = add_user("sam", role="soc").created.user
    with pytest.raises(ExportRefused):
        export_bytes(soc, ledger, ExportFilter(), fmt="csv", now=T0)
    assert ledger.exports == []
    for role in ("auditor", "admin"):
        user = add_user(f"u-{role}", role=role).created.user
        name, content, records = export_bytes(user, ledger, ExportFilter(), fmt="csv", now=T0)
        assert name.endswith(".csv") and content == b"{}\n" and records == 1
    assert len(ledger.exports) == 2


def test_export_filter_binds_the_page_filters() -> None:
    filters = DashboardFilters(tenant="acme", since=T0.date(), until=T0.date())
    where = export_filter(filters, subject=" u-1 ", event_type="lockout.applied")
    assert where.tenant == "acme" and where.subject == "u-1"
    assert where.types == frozenset({"lockout.applied"})
    assert where.since is not None and where.until is not None
    assert (where.until - where.since).days == 1


def _export(app: Dash, client: object, fmt: str, tenant: str = "globex") -> dict[str, object]:
    body = callback_body(
        app, "audit-download", {f"audit-export-{fmt}.n_clicks": 1, "filter-tenant.value": tenant}
    )
    response = client.post("/_dash-update-component", json=body)  # type: ignore[attr-defined]
    assert response.status_code in (200, 204), response.data
    return json.loads(response.data) if response.status_code == 200 else {}


def test_a_soc_analyst_cannot_export_through_the_callback(
    audit_app: Dash, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("sam", role="soc"), clock())
        answer = _export(audit_app, client, "csv")
    outputs = answer["response"]  # type: ignore[index]
    assert "audit-download" not in outputs
    assert "may not export" in json.dumps(outputs["audit-export-status"])  # type: ignore[index]


def test_an_auditor_downloads_the_filtered_export(
    audit_app: Dash, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("alice", role="auditor"), clock())
        answer = _export(audit_app, client, "jsonl")
    download = answer["response"]["audit-download"]["data"]  # type: ignore[index]
    assert download["filename"].endswith(".jsonl")
    lines = base64.b64decode(download["content"]).decode().splitlines()
    tenants = {json.loads(line)["event"]["tenant"] for line in lines}
    assert tenants == {"globex"} and len(lines) > 10


def test_grid_rows_show_the_ledger_rows(audit_app: Dash, ledger: object) -> None:
    rows = list(ledger.rows(ExportFilter(tenant="globex")))  # type: ignore[attr-defined]
    shown = grid_row(rows[0])
    assert shown["tenant"] == "globex" and shown["sequence"] == rows[0].sequence
    assert shown["type"] == rows[0].event["type"]

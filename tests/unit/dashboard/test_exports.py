"""Exports: auditors and admins get the file; a SOC analyst is refused on the server."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dash import Dash

from audit.checkpoints import Checkpoint, public_pem
from audit.export import ExportFormat
from audit.ledger import Ledger
from audit.rows import ExportFilter, LedgerRow
from dashboard.app import create_app
from dashboard.exports import ExportRefused, export_bytes, export_filter, grid_row
from dashboard.filters import DashboardFilters
from dashboard.ledger import Verification
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
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


def _verify(app: Dash, client: object) -> str:
    body = callback_body(app, "audit-verify-status", {"audit-verify.n_clicks": 1})
    response = client.post("/_dash-update-component", json=body)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.data
    return json.dumps(json.loads(response.data)["response"]["audit-verify-status"])


def test_only_auditors_and_admins_verify_the_whole_ledger(
    audit_app: Dash, add_user: AddUser, clock: Clock
) -> None:
    """A full verify reads every entry: a SOC analyst's post to the callback (the button
    is disabled for them) does not start one."""
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("sam", role="soc"), clock())
        assert "for auditors and admins" in _verify(audit_app, client)
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("alice", role="auditor"), clock())
        answer = _verify(audit_app, client)
    assert "Verified" in answer and "no keys are pinned" in answer


def test_the_dashboard_verifies_against_pinned_keys(
    settings: Settings, lake: Path, ledger: Ledger, clock: Clock, add_user: AddUser, tmp_path: Path
) -> None:
    own = tmp_path / "own.pem"
    own.write_bytes(public_pem(next(iter(ledger.public_keys().values()))))
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    answers = {}
    for name, pem in (("own", own), ("foreign", foreign)):
        config = replace(dashboard_config(settings), ledger_public_key_files=(pem,))
        app = create_app(config, now=clock)
        with app.server.test_client() as client:
            sign_in(client, add_user(f"a{name}", role="auditor"), clock())
            answers[name] = _verify(app, client)
    assert "Verified" in answers["own"] and "signed by the 1 pinned keys" in answers["own"]
    assert "FAILED" in answers["foreign"] and "which is not pinned" in answers["foreign"]


class SlowLedger(RecordingLedger):
    def __init__(self) -> None:
        super().__init__()
        self.started, self.release, self.runs = threading.Event(), threading.Event(), 0

    def verify(self) -> Verification:
        self.runs += 1
        self.started.set()
        self.release.wait(timeout=30)
        return Verification(True, "all good")


def test_one_verification_at_a_time(
    settings: Settings, lake: Path, clock: Clock, add_user: AddUser
) -> None:
    slow = SlowLedger()
    app = create_app(dashboard_config(settings), now=clock, ledger=slow)
    first, second = add_user("ann", role="auditor"), add_user("bob", role="admin")
    answers: list[str] = []

    def verify_as(account: object) -> None:
        with app.server.test_client() as client:
            sign_in(client, account, clock())  # type: ignore[arg-type]
            answers.append(_verify(app, client))

    running = threading.Thread(target=verify_as, args=(first,))
    running.start()
    assert slow.started.wait(timeout=30)
    verify_as(second)  # while the first one runs
    slow.release.set()
    running.join(timeout=30)
    assert "running already" in answers[0] and "all good" in answers[1]
    assert slow.runs == 1


def test_a_pinned_key_file_that_holds_no_key_stops_the_dashboard_at_start(
    settings: Settings, lake: Path, clock: Clock, tmp_path: Path
) -> None:
    junk, missing = tmp_path / "junk.pem", tmp_path / "missing.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    for path in (junk, missing):
        config = replace(dashboard_config(settings), ledger_public_key_files=(path,))
        with pytest.raises(ValueError, match=f"ledger public key {path}"):
            create_app(config, now=clock)


def test_the_grid_says_how_many_entries_the_ledger_holds() -> None:
    from dashboard.exports import shown_count

    assert shown_count(500, 12_345, limit=500) == (
        "Showing the newest 500 matching of the ledger's 12,345 entries."
    )
    assert shown_count(7, 12_345, limit=500) == "Showing 7 matching of the ledger's 12,345 entries."

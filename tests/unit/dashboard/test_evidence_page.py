"""The Compliance page's evidence packs: the controls' status, a pack per framework at
``/evidence/<framework>.zip`` for auditors and admins (any other role gets 403 from the
server, whatever it asks for), each download recorded in the dashboard's outbox as
``audit.evidence.downloaded`` with the pack's digest, and the pack verifies."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import sqlalchemy as sa
from dash import Dash
from flask.testing import FlaskClient

from audit.ledger import Ledger
from dashboard.users import TENANT, UserDirectory
from schemas import decode
from schemas.payloads import EvidenceDownloaded
from tests.unit.dashboard.conftest import T0, AddUser, Clock, callback_body, sign_in
from verifiers.publish import outbox_events


def _post(app: Dash, client: object, output: str, values: dict[str, object]) -> dict[str, object]:
    body = callback_body(app, output, values)
    response = client.post("/_dash-update-component", json=body)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.data
    answer: dict[str, object] = json.loads(response.data)["response"]
    return answer


def _recorded(directory: UserDirectory) -> list[EvidenceDownloaded]:
    with directory.engine.connect() as connection:
        values = connection.scalars(
            sa.select(outbox_events.c.value).where(
                outbox_events.c.event_type == "audit.evidence.downloaded"
            )
        ).all()
    found = []
    for value in values:
        event = decode(bytes(value))
        assert isinstance(event.data, EvidenceDownloaded)
        found.append(event.data)
    return found


def _unzip(content: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(into)
    (pack,) = into.iterdir()
    return pack


def test_an_auditor_downloads_a_pack_that_verifies_and_the_download_is_recorded(
    audit_app: Dash,
    ledger: Ledger,
    add_user: AddUser,
    clock: Clock,
    directory: UserDirectory,
    tmp_path: Path,
) -> None:
    ledger.tick(now=T0, force=True)  # every entry covered by a signed checkpoint
    with audit_app.server.test_client() as client:
        ada = add_user("ada", role="auditor")
        sign_in(client, ada, clock())
        response = client.get("/evidence/soc2.zip?tenant=acme&since=2026-11-01&until=2026-11-30")
    assert response.status_code == 200, response.data
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    pack = _unzip(response.data, tmp_path / "unzipped")
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["tenant"] == "acme"
    assert manifest["period"]["since"].startswith("2026-11-01")
    assert manifest["period"]["until"].startswith("2026-12-01")  # the last day included
    controls = json.loads((pack / "controls.json").read_text())
    assert [c["control"] for c in controls] == [
        "CC6.1-mfa",
        "CC6.1-phishing-resistant",
        "CC6.6-lockout",
    ]
    assert sum(c["rows"] for c in controls) > 0
    result = subprocess.run(
        [sys.executable, "-I", str(pack / "verify.py"), str(pack)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

    digest = hashlib.sha256((pack / "manifest.json").read_bytes()).hexdigest()
    assert response.headers["X-Evidence-Manifest-SHA256"] == digest
    (recorded,) = _recorded(directory)
    assert recorded.manifest_sha256 == digest
    assert (recorded.framework, recorded.scope_tenant) == ("soc2", "acme")
    assert recorded.rows == sum(c["rows"] for c in controls)
    event_id = response.headers["X-Evidence-Event-Id"]
    query = sa.select(outbox_events.c.value).where(outbox_events.c.event_id == event_id)
    with directory.engine.connect() as connection:
        (value,) = connection.scalars(query).all()
    event = decode(bytes(value))
    assert (event.tenant, event.subject) == (TENANT, ada.created.user.subject)


def test_a_soc_analyst_fetching_the_url_directly_gets_403_and_nothing_is_recorded(
    audit_app: Dash,
    ledger: Ledger,
    add_user: AddUser,
    clock: Clock,
    directory: UserDirectory,
) -> None:
    ledger.tick(now=T0, force=True)
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("sam", role="soc"), clock())
        for framework in ("soc2", "hipaa", "gdpr"):
            response = client.get(f"/evidence/{framework}.zip")
            assert response.status_code == 403
            assert b"may not take an evidence pack" in response.data
            assert not response.data.startswith(b"PK")  # no zip, not even a part of one
    assert _recorded(directory) == []


def test_without_a_session_the_url_is_refused(audit_app: Dash, client: FlaskClient) -> None:
    with audit_app.server.test_client() as anonymous:
        response = anonymous.get("/evidence/soc2.zip")
    assert response.status_code in (302, 401)
    assert not response.data.startswith(b"PK")


def test_an_unknown_framework_is_404(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="admin"), clock())
        assert client.get("/evidence/pci.zip").status_code == 404


def test_a_pack_covers_the_ledger_up_to_its_newest_checkpoint(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock, tmp_path: Path
) -> None:
    """The ledger sink signs every N entries or T seconds: entries after the newest
    checkpoint are left to the next pack instead of refusing the download."""
    newest = max(c.tree_size for c in ledger.checkpoints())
    assert ledger.size() > newest  # the demo ledger's tail is not yet covered
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="auditor"), clock())
        response = client.get("/evidence/hipaa.zip")
    assert response.status_code == 200, response.data
    pack = _unzip(response.data, tmp_path / "p")
    assert json.loads((pack / "manifest.json").read_text())["checkpoint"] == newest
    result = subprocess.run(
        [sys.executable, "-I", str(pack / "verify.py"), str(pack)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_page_links_follow_the_filters(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="auditor"), clock())
        answer = _post(
            audit_app,
            client,
            "compliance-pack-soc2.href",
            {
                "filter-tenant.value": "acme",
                "filter-since.value": "2026-11-01",
                "filter-until.value": "2026-11-30",
            },
        )
    hrefs = json.dumps(answer)
    assert "/evidence/soc2.zip?tenant=acme&since=2026-11-01&until=2026-11-30" in hrefs
    assert "/evidence/gdpr.zip?tenant=acme" in hrefs


def test_the_page_lists_every_control_with_its_status(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="auditor"), clock())
        answer = _post(audit_app, client, "compliance-controls", {"filter-tenant.value": None})
    text = json.dumps(answer)
    for control in ("CC6.1-mfa", "CC6.1-phishing-resistant", "CC6.6-lockout", "164.312(d)",
                    "Art.17", "Art.30", "Art.32"):  # fmt: skip
        assert control in text
    assert "met" in text

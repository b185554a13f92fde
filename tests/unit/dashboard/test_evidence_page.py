"""The Compliance page's evidence packs: the controls' status, a pack per framework for
auditors and admins (a SOC analyst is refused on the server), and the pack verifies."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from dash import Dash

from audit.ledger import Ledger
from tests.unit.dashboard.conftest import T0, AddUser, Clock, callback_body, sign_in


def _post(app: Dash, client: object, output: str, values: dict[str, object]) -> dict[str, object]:
    body = callback_body(app, output, values)
    response = client.post("/_dash-update-component", json=body)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.data
    answer: dict[str, object] = json.loads(response.data)["response"]
    return answer


def test_an_auditor_downloads_a_pack_that_verifies(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock, tmp_path: Path
) -> None:
    ledger.tick(now=T0, force=True)  # every entry covered by a signed checkpoint
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="auditor"), clock())
        answer = _post(audit_app, client, "compliance-pack-download",
                       {"compliance-pack-soc2.n_clicks": 1})  # fmt: skip
    download = answer["compliance-pack-download"]["data"]  # type: ignore[index]
    assert download["filename"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(download["content"]))) as archive:
        archive.extractall(tmp_path / "unzipped")
    (pack,) = (tmp_path / "unzipped").iterdir()
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


def test_a_soc_analyst_is_refused_a_pack(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("sam", role="soc"), clock())
        answer = _post(audit_app, client, "compliance-pack-download",
                       {"compliance-pack-gdpr.n_clicks": 1})  # fmt: skip
    assert "compliance-pack-download" not in answer
    assert "may not take an evidence pack" in json.dumps(answer)


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

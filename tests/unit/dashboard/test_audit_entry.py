"""The Audit trail page opens an entry on click: its full event and its inclusion proof,
checked against the ledger's keys (or the pinned ones); an entry no checkpoint covers yet
says so; the grid says how many entries the ledger holds."""

from __future__ import annotations

import json
from typing import Any

from dash import Dash

from audit.ledger import Ledger
from audit.rows import ExportFilter
from audit.verify import check_proof_document
from tests.unit.dashboard.conftest import T0, AddUser, Clock, callback_body, sign_in


def _open(app: Dash, client: Any, row_id: object) -> dict[str, Any]:
    body = callback_body(app, "audit-entry-modal", {"audit-grid.cellClicked": {"rowId": row_id}})
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data
    answer: dict[str, Any] = json.loads(response.data)["response"]
    return answer


def _text(component: Any) -> str:
    return json.dumps(component)


def _pre(component: Any, component_id: str) -> str:
    """The text of the ``<pre>`` with ``component_id`` inside a serialized layout."""
    if isinstance(component, dict):
        if component.get("props", {}).get("id") == component_id:
            return str(component["props"]["children"])
        found = [_pre(v, component_id) for v in component.values()]
    elif isinstance(component, list):
        found = [_pre(v, component_id) for v in component]
    else:
        return ""
    return next((f for f in found if f), "")


def test_a_click_opens_the_full_event_and_its_verified_proof(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    ledger.tick(now=T0, force=True)
    row = next(ledger.rows(ExportFilter(types=frozenset({"auth.login.attempted"}))))
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("sam", role="soc"), clock())  # every role reads the trail
        answer = _open(audit_app, client, str(row.sequence))
    assert answer["audit-entry-modal"]["is_open"] is True
    assert f"Entry {row.sequence}" in answer["audit-entry-title"]["children"]
    body = answer["audit-entry"]["children"]
    assert "Proof verified" in _text(body)
    event = json.loads(_pre(body, "audit-entry-event"))
    assert event == row.event  # the whole event, personal data as the grid shows it
    proof = _pre(body, "audit-entry-proof")
    assert json.loads(proof)["event_id"] == row.event["id"]
    pem = next(iter(ledger.public_keys().values()))
    from audit.checkpoints import public_pem

    verified = check_proof_document(proof, public_keys=[public_pem(pem)])  # as an auditor would
    assert f"event {row.event['id']}" in verified.summary


def test_an_entry_after_the_newest_checkpoint_has_no_proof_yet(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    newest = max(c.tree_size for c in ledger.checkpoints())
    assert ledger.size() > newest
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada"), clock())
        answer = _open(audit_app, client, str(ledger.size() - 1))
    body = _text(answer["audit-entry"]["children"])
    assert "No verified proof" in body and "not yet covered" in body


def test_a_forged_row_id_opens_nothing(
    audit_app: Dash, ledger: Ledger, add_user: AddUser, clock: Clock
) -> None:
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada"), clock())
        for forged in ("1; DROP TABLE ledger_entries", None, {"a": 1}):
            answer = _open(audit_app, client, forged)
            assert "audit-entry" not in answer
        answer = _open(audit_app, client, "99999999")
    assert "No such entry" in _text(answer["audit-entry"]["children"])

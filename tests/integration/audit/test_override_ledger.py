"""The override's events reach the ledger, on SQLite and PostgreSQL: what the relay takes
from the verifiers' outbox passes the worker's producer gate (control events signed by a
trusted key), is appended, proved and verified; the justification of a refusal is
personal data, so it is stored encrypted and shredded with the subject.

(The path from the outbox through Kafka to the ledger sink is the same for every event
type and is tested in ``tests/integration/test_erasure_flow.py``; here the events go from
the outbox to the ledger directly.)"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from audit.checkpoints import public_pem
from audit.rows import ExportFilter
from audit.tables import entries
from audit.verify import check_proof_document
from schemas.signing import check_producer
from tests.factories import CONTROL_KEY, TRUSTED
from tests.unit.audit.ledger_support import open_test_ledger
from tests.unit.verifiers.conftest import NOW, make_store
from tests.unit.verifiers.override_support import (
    ALICE,
    CAROL_AUDITOR,
    SUBJECT,
    TENANT,
    approved,
    lock,
    requested,
    sign_in_request,
    staged,
)
from verifiers import temporary_access

WHY = "Lost phone at the airport; identity checked by a video call."


def test_every_override_attempt_is_a_proved_entry_of_the_ledger(
    ledger_url: str, tmp_path: Path
) -> None:
    store = make_store(f"sqlite:///{tmp_path / 'verifiers.db'}")
    lock(store, NOW)
    request = requested(
        store, NOW, action="temporary_access", valid_for=timedelta(hours=1), justification=WHY
    )
    assert request.override is not None
    at = NOW + timedelta(seconds=10)
    assert approved(store, request.override.id, at, by=ALICE).reason == "self_approval"
    assert approved(store, request.override.id, at, by=CAROL_AUDITOR).reason == "not_admin"
    grant = approved(store, request.override.id, at).grant
    assert grant is not None
    assert temporary_access.redeem(store, sign_in_request(at), code=grant.code).accepted
    assert not temporary_access.redeem(store, sign_in_request(at), code=grant.code).accepted

    outbox = [e for e in staged(store) if e.type.startswith(("admin.", "access."))]
    for event in outbox:
        check_producer(event, TRUSTED)  # what the worker lets through from the topic
    ledger = open_test_ledger(tmp_path, ledger_url, every=1)
    ledger.append(staged(store), now=at)

    rows = {r.event["id"]: r.event for r in ledger.rows(ExportFilter(subject=SUBJECT))}
    recorded = [rows[e.id] for e in outbox]
    assert [(r["type"], r["data"].get("reason")) for r in recorded] == [
        ("admin.override.requested", None),
        ("admin.override.refused", "self_approval"),
        ("admin.override.refused", "not_admin"),
        ("admin.override.approved", None),
        ("access.temporary.granted", None),
        ("access.temporary.used", None),
        ("access.temporary.refused", "used_code"),
    ]
    approval = recorded[3]["data"]
    assert (approval["requested_by"], approval["approved_by"]) == ("alice", "bob")
    assert approval["ticket"] == "SEC-1234" and recorded[0]["data"]["justification"] == WHY
    assert recorded[1]["data"]["justification"] == WHY  # opened: the subject's key exists
    assert all(r["tenant"] == TENANT for r in recorded)

    pems = [public_pem(k) for k in ledger.public_keys().values()]
    for event in outbox:
        check_proof_document(json.dumps(ledger.prove(event.id)), public_keys=pems)
    assert ledger.verify().ok

    with ledger.engine.connect() as connection:
        stored = b"".join(bytes(e) for e in connection.scalars(sa.select(entries.c.entry)))
    # a refusal's justification is personal data: encrypted, never in clear; the request's
    # and the grant's (published v1 fields, not marked personal) are the two in clear
    assert stored.count(WHY.encode()) == 2
    ledger.erase(
        TENANT, SUBJECT, now=at + timedelta(days=1), requested_by="dpo", signer=CONTROL_KEY
    )
    after = {r.event["id"]: r.event for r in ledger.rows(ExportFilter(subject=SUBJECT))}
    assert after[outbox[1].id]["data"]["justification"] != WHY
    assert ledger.verify().ok
    ledger.engine.dispose()
    store.engine.dispose()

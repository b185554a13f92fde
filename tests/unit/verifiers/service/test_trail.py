"""The trail of refused requests (``verifiers.service.trail``), attacked as a stranger would:
junk bodies, no or forged credentials, a forged ``X-Forwarded-For``, another tenant's
subject, a flood of unauthenticated junk — each refusal is an event, filed where it
belongs, and a stranger cannot make us write without bound."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from verifiers.publish import outbox_events
from verifiers.service.trail import TENANT, UNAUTHENTICATED_BURST, UNKNOWN_SUBJECT

from .conftest import Service

VERIFY = "/v1/subjects/erin/totp/verify"
TEMPLATE = "POST /v1/subjects/{subject}/totp/verify"
JSON = {"Content-Type": "application/json"}


def refusals(service: Service) -> list[dict[str, Any]]:
    with service.parts.store.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_events.c.value).order_by("seq")).all()
    found = [msgspec.json.decode(row.value) for row in rows]
    return [e for e in found if e["type"] == "service.request.refused"]


def test_every_refusal_outside_a_ceremony_is_an_event_filed_under_the_callers_tenant(
    service: Service,
) -> None:
    token = service.client("acme")
    authenticator = service.enrol_totp(token, "erin")
    limit = service.parts.config.max_body_bytes
    calls = {
        "oversized": (VERIFY, {"raw": b'{"code": "' + b"1" * limit + b'"}', "headers": JSON}),
        "wrong_type": (VERIFY, {"raw": b"code=1", "headers": {"Content-Type": "text/plain"}}),
        "malformed": (VERIFY, {"raw": b'{"code": ', "headers": JSON}),
        "missing_code": (VERIFY, {"body": {}}),
        "no_route": ("/v1/nothing", {"body": {}}),
    }
    answers = {}
    for name, (path, how) in calls.items():
        method = "GET" if name == "no_route" else "POST"
        answers[name] = service.call(method, path, token=token, **how)
    client_id = token.removeprefix("fsc_").split(".")[0]

    found = {
        (e["data"]["status"], e["data"]["error"], e["data"]["operation"], e["subject"])
        for e in refusals(service)
    }
    assert found == {
        (413, "body_too_large", TEMPLATE, "erin"),  # refused before routing, matched by the trail
        (415, "unsupported_media_type", TEMPLATE, "erin"),
        (400, "malformed_json", TEMPLATE, "erin"),
        (422, "invalid_request", TEMPLATE, "erin"),
        (404, "not_found", "GET (no route)", UNKNOWN_SUBJECT),  # never the raw path
    }
    assert {a.status for a in answers.values()} == {413, 415, 400, 422, 404}
    for event in refusals(service):
        assert event["tenant"] == "acme"
        assert event["data"]["service_client"] == client_id
        assert event["data"]["caller_ip"] == "127.0.0.1"

    # a ceremony's own refusal is its own event, not recorded twice
    before = len(refusals(service))
    wrong = str((int(authenticator.now()) + 1) % 1_000_000).zfill(6)
    assert service.call("POST", VERIFY, {"code": wrong}, token=token).status == 403
    assert len(refusals(service)) == before


def test_no_or_a_forged_credential_is_recorded_as_the_platforms_and_a_forged_hop_is_ignored(
    service: Service,
) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.99"}
    missing = service.call("POST", VERIFY, {"code": "123456"}, headers=spoofed)
    forged = service.call("POST", VERIFY, {"code": "123456"}, token="fsc_x.forged")
    assert (missing.status, forged.status) == (401, 401)
    found = [(e["tenant"], e["subject"], e["data"]["error"]) for e in refusals(service)]
    assert found == [
        (TENANT, UNKNOWN_SUBJECT, "unauthenticated"),
        (TENANT, UNKNOWN_SUBJECT, "invalid_credential"),
    ]
    for event in refusals(service):
        assert "service_client" not in event["data"]  # none: left out
        assert event["data"]["caller_ip"] == "127.0.0.1"  # the peer: no trusted proxy


def test_another_tenants_subject_is_recorded_in_the_callers_tenant_under_no_subject(
    service: Service,
) -> None:
    service.enrol_totp(service.client("acme"), "erin")
    other = service.client("globex")
    answer = service.call("POST", VERIFY, {"code": "123456"}, token=other)
    assert (answer.status, answer.json["error"]) == (404, "unknown_subject")
    (event,) = refusals(service)
    assert (event["tenant"], event["subject"]) == ("globex", UNKNOWN_SUBJECT)
    assert event["data"]["named_subject"] == "erin"  # in globex's trail, not acme's


def test_a_strangers_junk_is_recorded_up_to_a_budget_per_ip(service: Service) -> None:
    sent = 3 * UNAUTHENTICATED_BURST
    for _ in range(sent):
        assert service.call("POST", VERIFY, raw=b"{", headers=JSON).status in (400, 401)
    recorded = len(refusals(service))
    # the burst, and one more a second at most while the flood lasted (a few seconds)
    assert UNAUTHENTICATED_BURST <= recorded < UNAUTHENTICATED_BURST + 10 < sent


def test_a_failure_to_record_still_answers_the_4xx(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = service.client("acme")

    def broken(*_args: object) -> int:
        raise RuntimeError("database gone")

    monkeypatch.setattr(service.parts.store.outbox, "add", broken)
    answer = service.call("POST", VERIFY, raw=b'{"code": ', headers=JSON, token=token)
    assert (answer.status, answer.json["error"]) == (400, "malformed_json")

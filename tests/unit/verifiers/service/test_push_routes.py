"""Push through the MFA service, the test playing the phone: it makes its own Ed25519 key
and builds the bytes it signs from the documented format (no factorstream code)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import Answer, Service
from .test_api import events

BUSINESS = {"tier": "business"}  # a tier that accepts push


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def canonical(members: dict[str, Any]) -> bytes:
    return json.dumps(members, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Phone:
    """The push app: its key pair, and the enrollment it belongs to once enrolled."""

    tenant: str
    subject: str
    key: Ed25519PrivateKey
    enrollment_id: str = ""
    key_id: str = ""

    @property
    def jwk(self) -> dict[str, str]:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}

    def proof(self) -> str:
        return b64url(
            self.key.sign(
                canonical(
                    {
                        "purpose": "factorstream.push.enrollment.v1",
                        "tenant": self.tenant,
                        "subject": self.subject,
                        "enrollment_id": self.enrollment_id,
                        "key_id": self.key_id,
                    }
                )
            )
        )

    def answer(
        self, challenge_id: str, number: str | None, decision: str = "approve"
    ) -> dict[str, Any]:
        signed = canonical(
            {
                "purpose": "factorstream.push.answer.v1",
                "tenant": self.tenant,
                "subject": self.subject,
                "challenge_id": challenge_id,
                "decision": decision,
                "number": number,
            }
        )
        return {
            **BUSINESS,
            "challenge_id": challenge_id,
            "decision": decision,
            "number": number,
            "signature": b64url(self.key.sign(signed)),
            "key_id": self.key_id,
        }


def enrol(service: Service, token: str, tenant: str, subject: str) -> Phone:
    phone = Phone(tenant, subject, Ed25519PrivateKey.generate())
    base = f"/v1/subjects/{subject}/push/enrollments"
    started = service.call(
        "POST", base, {**BUSINESS, "device_key": phone.jwk, "device_name": "Pixel"}, token=token
    )
    assert started.status == 201, started.body
    phone.enrollment_id, phone.key_id = started.json["enrollment_id"], started.json["key_id"]
    confirmed = service.call(
        "POST",
        f"{base}/{phone.enrollment_id}/confirm",
        {**BUSINESS, "signature": phone.proof()},
        token=token,
    )
    assert confirmed.status == 200, confirmed.body
    return phone


def send(service: Service, token: str, subject: str) -> Answer:
    return service.call(
        "POST",
        f"/v1/subjects/{subject}/push/send",
        {**BUSINESS, "location": "Berlin, DE"},
        token=token,
    )


def respond(service: Service, token: str, subject: str, body: dict[str, Any]) -> Answer:
    return service.call("POST", f"/v1/subjects/{subject}/push/respond", body, token=token)


def test_a_push_approved_with_the_device_key_steps_up_once(service: Service) -> None:
    token = service.client("acme")
    phone = enrol(service, token, "acme", "alice")
    push = send(service, token, "alice")
    assert push.status == 201, push.body
    assert push.json["enrollment_id"] == phone.enrollment_id
    answer = phone.answer(push.json["challenge_id"], push.json["number"])

    approved = respond(service, token, "alice", answer)
    replayed = respond(service, token, "alice", answer)

    assert approved.status == 200, approved.body
    assert approved.json["amr"] == ["pop", "mfa"]
    assert (replayed.status, replayed.json["error"]) == (409, "replayed_answer")
    kinds = [e["type"] for e in events(service)]
    assert kinds == [
        "mfa.enrollment.started",
        "mfa.enrollment.completed",
        "mfa.challenge.issued",
        "mfa.push.approved",
        "mfa.verification.failed",
    ]
    assert events(service)[-1]["data"]["reason"] == "replayed_answer"  # type: ignore[index]


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("unsigned", "unsigned_answer"),
        ("foreign_key", "bad_signature"),
        ("foreign_key_named", "unknown_device_key"),
        ("number_altered", "bad_signature"),
        ("rejection_turned_approval", "bad_signature"),
        ("signed_for_another_tenant", "bad_signature"),
    ],
)
def test_an_answer_not_signed_by_the_enrolled_device_is_refused_and_recorded(
    service: Service, attack: str, reason: str
) -> None:
    token = service.client("acme")
    phone = enrol(service, token, "acme", "bob")
    thief = enrol(service, token, "acme", "mallory")
    push = send(service, token, "bob").json
    cid, number = push["challenge_id"], push["number"]
    good = phone.answer(cid, number)
    stolen = Phone("acme", "bob", thief.key, key_id=thief.key_id)
    body = {
        "unsigned": {**good, "signature": None},
        "foreign_key": {**stolen.answer(cid, number), "key_id": None},
        "foreign_key_named": stolen.answer(cid, number),
        "number_altered": {**good, "number": "10" if number != "10" else "11"},
        "rejection_turned_approval": {**phone.answer(cid, number, "reject"), "decision": "approve"},
        "signed_for_another_tenant": Phone("globex", "bob", phone.key, key_id=phone.key_id).answer(
            cid, number
        ),
    }[attack]

    refused = respond(service, token, "bob", body)

    assert (refused.status, refused.json["error"]) == (403, reason)
    last = events(service)[-1]
    assert last["type"] == "mfa.verification.failed"
    assert last["data"]["reason"] == reason  # type: ignore[index]
    assert last["data"]["enrollment_id"] == phone.enrollment_id  # type: ignore[index]
    assert respond(service, token, "bob", good).status == 200  # the push stayed open


def test_tenants_and_subjects_do_not_cross(service: Service) -> None:
    bank, other = service.client("bank"), service.client("other")
    phone = enrol(service, bank, "bank", "carol")
    enrol(service, bank, "bank", "dan")
    push = send(service, bank, "carol").json
    answer = phone.answer(push["challenge_id"], push["number"])

    other_tenant = respond(service, other, "carol", answer)
    other_subject = respond(service, bank, "dan", answer)
    send_other = send(service, other, "carol")

    assert (other_tenant.status, other_tenant.json["error"]) == (404, "unknown_subject")
    assert (send_other.status, send_other.json["error"]) == (404, "unknown_subject")
    assert (other_subject.status, other_subject.json["error"]) == (404, "unknown_challenge")
    assert respond(service, bank, "carol", answer).status == 200


def test_enrolment_refuses_bad_keys_and_proofs_and_a_second_push_waits(service: Service) -> None:
    token = service.client("acme")
    base = "/v1/subjects/erin/push/enrollments"
    rsa = service.call(
        "POST", base, {**BUSINESS, "device_key": {"kty": "RSA", "n": "AQAB"}}, token=token
    )
    private = service.call(
        "POST",
        base,
        {
            **BUSINESS,
            "device_key": {**Phone("acme", "erin", Ed25519PrivateKey.generate()).jwk, "d": "AAAA"},
        },
        token=token,
    )
    phone = Phone("acme", "erin", Ed25519PrivateKey.generate())
    started = service.call("POST", base, {**BUSINESS, "device_key": phone.jwk}, token=token).json
    phone.enrollment_id, phone.key_id = started["enrollment_id"], started["key_id"]
    impostor = Phone(
        "acme", "erin", Ed25519PrivateKey.generate(), phone.enrollment_id, phone.key_id
    )
    confirm = f"{base}/{phone.enrollment_id}/confirm"
    unsigned = service.call("POST", confirm, BUSINESS, token=token)
    forged = service.call("POST", confirm, {**BUSINESS, "signature": impostor.proof()}, token=token)
    no_device = send(service, token, "erin")
    confirmed = service.call("POST", confirm, {**BUSINESS, "signature": phone.proof()}, token=token)
    first, second = send(service, token, "erin"), send(service, token, "erin")

    assert (rsa.status, rsa.json["error"]) == (422, "invalid_device_key")
    assert (private.status, private.json["error"]) == (422, "invalid_device_key")
    assert (unsigned.status, unsigned.json["error"]) == (403, "unsigned_answer")
    assert (forged.status, forged.json["error"]) == (403, "bad_signature")
    assert (no_device.status, no_device.json["error"]) == (404, "not_enrolled")
    assert confirmed.status == 200 and first.status == 201
    assert (second.status, second.json["error"]) == (409, "push_pending")
    assert int(second.headers["retry-after"]) == 60


def test_a_tier_without_push_refuses_it_on_every_route(service: Service) -> None:
    token = service.client("acme")
    phone = enrol(service, token, "acme", "fay")
    customer = {"tier": "customer"}
    base = "/v1/subjects/fay/push"
    answers = [
        service.call(
            "POST", f"{base}/enrollments", {**customer, "device_key": phone.jwk}, token=token
        ),
        service.call(
            "POST",
            f"{base}/enrollments/{phone.enrollment_id}/confirm",
            {**customer, "signature": phone.proof()},
            token=token,
        ),
        service.call("POST", f"{base}/send", customer, token=token),
        respond(service, token, "fay", {**phone.answer("push-x", "10"), **customer}),
    ]
    assert [(a.status, a.json["error"]) for a in answers] == [(403, "factor_not_allowed")] * 4


def test_bad_push_requests_get_4xx_never_500(service: Service) -> None:
    token = service.client("acme")
    phone = enrol(service, token, "acme", "gus")
    path = "/v1/subjects/gus/push/respond"
    json_type = {"Content-Type": "application/json"}
    good = phone.answer("push-" + "0" * 32, "10")
    answers = {
        "unknown_subject": respond(service, token, "nobody", good),
        "unknown_challenge": respond(service, token, "gus", good),
        "bad_decision": respond(service, token, "gus", {**good, "decision": "maybe"}),
        "long_signature": respond(service, token, "gus", {**good, "signature": "A" * 500}),
        "junk_signature": respond(service, token, "gus", {**good, "signature": "%%%"}),
        "malformed_json": service.call("POST", path, raw=b'{"a":', headers=json_type, token=token),
        "wrong_type": service.call(
            "POST", path, raw=b"a", headers={"Content-Type": "text/plain"}, token=token
        ),
        "oversized": respond(service, token, "gus", {**good, "user_agent": "x" * 20000}),
        "device_key_not_object": service.call(
            "POST",
            "/v1/subjects/gus/push/enrollments",
            {**BUSINESS, "device_key": "x"},
            token=token,
        ),
    }
    expected = {
        "unknown_subject": (404, "unknown_subject"),
        "unknown_challenge": (404, "unknown_challenge"),
        "bad_decision": (422, "invalid_request"),
        "long_signature": (422, "invalid_request"),
        "junk_signature": (404, "unknown_challenge"),
        "malformed_json": (400, "malformed_json"),
        "wrong_type": (415, "unsupported_media_type"),
        "oversized": (413, "body_too_large"),
        "device_key_not_object": (422, "invalid_request"),
    }
    assert {name: (a.status, a.json["error"]) for name, a in answers.items()} == expected
    hal = enrol(service, token, "acme", "hal")  # gus's failures locked him for a while
    push = send(service, token, "hal").json
    junk = respond(
        service, token, "hal", {**hal.answer(push["challenge_id"], "10"), "signature": "%%%"}
    )
    assert (junk.status, junk.json["error"]) == (403, "bad_signature")

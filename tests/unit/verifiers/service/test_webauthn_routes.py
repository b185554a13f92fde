"""WebAuthn through the MFA service, the software authenticator playing the browser."""

from __future__ import annotations

import json

import jwt
import pytest

from factorstream.softauthn import SoftAuthenticator

from .conftest import ISSUER, Answer, Service
from .test_api import events

ORIGIN = ISSUER  # the rp id and origin default to the issuer's
ADMIN = {"tier": "admin"}  # the tier that accepts WebAuthn


def register(service: Service, token: str, subject: str, key: SoftAuthenticator) -> str:
    options = service.call(
        "POST",
        f"/v1/subjects/{subject}/webauthn/registrations/options",
        {**ADMIN, "user_name": f"{subject}@example.com"},
        token=token,
    )
    assert options.status == 201, options.body
    assert options.json["options"]["rp"]["id"] == "mfa.test"
    credential = key.create(options.json["options"], ORIGIN)
    verified = service.call(
        "POST",
        f"/v1/subjects/{subject}/webauthn/registrations/verify",
        {
            **ADMIN,
            "challenge_id": options.json["challenge_id"],
            "credential": json.loads(credential),
        },
        token=token,
    )
    assert verified.status == 200, verified.body
    assert verified.json["enrollment_id"] == options.json["enrollment_id"]
    return str(options.json["enrollment_id"])


def authenticate(
    service: Service, token: str, subject: str, key: SoftAuthenticator, **knobs: object
) -> Answer:
    options = service.call(
        "POST", f"/v1/subjects/{subject}/webauthn/authentications/options", ADMIN, token=token
    )
    assert options.status == 201, options.body
    credential = key.get(options.json["options"], ORIGIN, **knobs)  # type: ignore[arg-type]
    return service.call(
        "POST",
        f"/v1/subjects/{subject}/webauthn/authentications/verify",
        {
            **ADMIN,
            "challenge_id": options.json["challenge_id"],
            "credential": json.loads(credential),
        },
        token=token,
    )


def claims(service: Service, answer: Answer, audience: str) -> dict[str, object]:
    jwks = jwt.PyJWKSet.from_dict(service.call("GET", "/.well-known/jwks.json").json)
    token = answer.json["assertion"]
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    decoded: dict[str, object] = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    return decoded


@pytest.mark.parametrize(
    ("backup_eligible", "amr"), [(False, ["hwk", "mfa"]), (True, ["swk", "mfa"])]
)
def test_a_security_key_or_passkey_registers_and_steps_up_with_the_right_amr(
    service: Service, backup_eligible: bool, amr: list[str]
) -> None:
    token = service.client("acme", audience="https://payroll.example")
    key = SoftAuthenticator(backup_eligible=backup_eligible)
    register(service, token, "alice", key)

    answer = authenticate(service, token, "alice", key)

    assert answer.status == 200, answer.body
    assert answer.json["amr"] == amr
    found = claims(service, answer, "https://payroll.example")
    assert found["amr"] == amr and found["sub"] == "alice" and found["tenant"] == "acme"
    assert "fpt" not in amr and "face" not in amr  # user verification does not say how
    kinds = [e["type"] for e in events(service)]
    assert kinds[-2:] == ["mfa.challenge.issued", "mfa.verification.succeeded"]


def test_a_forged_or_replayed_assertion_is_refused_with_the_librarys_reason(
    service: Service,
) -> None:
    token = service.client("acme")
    key = SoftAuthenticator()
    register(service, token, "bob", key)

    forged = authenticate(service, token, "bob", key, tamper_signature=True)
    options = service.call(
        "POST", "/v1/subjects/bob/webauthn/authentications/options", ADMIN, token=token
    ).json
    body = {
        **ADMIN,
        "challenge_id": options["challenge_id"],
        "credential": json.loads(key.get(options["options"], ORIGIN)),
    }
    path = "/v1/subjects/bob/webauthn/authentications/verify"
    first = service.call("POST", path, body, token=token)
    replayed = service.call("POST", path, body, token=token)
    phished = authenticate(service, token, "bob", key, rp_id="evil.example")

    assert (forged.status, forged.json["error"]) == (403, "bad_signature")
    assert first.status == 200
    assert (replayed.status, replayed.json["error"]) == (403, "challenge_used")
    assert (phished.status, phished.json["error"]) == (403, "wrong_rp_id")
    failed = [
        e["data"]["reason"]  # type: ignore[index]
        for e in events(service)
        if e["type"] == "mfa.verification.failed"
    ]
    assert failed == ["bad_signature", "challenge_used", "wrong_rp_id"]


def test_a_tier_without_webauthn_refuses_it_on_every_route(service: Service) -> None:
    token = service.client("acme")
    key = SoftAuthenticator()
    register(service, token, "carol", key)
    base = "/v1/subjects/carol/webauthn"
    customer = {"tier": "customer"}
    answers = [
        service.call("POST", f"{base}/registrations/options", customer, token=token),
        service.call(
            "POST",
            f"{base}/registrations/verify",
            {**customer, "challenge_id": "x", "credential": {}},
            token=token,
        ),
        service.call("POST", f"{base}/authentications/options", customer, token=token),
        service.call(
            "POST",
            f"{base}/authentications/verify",
            {**customer, "challenge_id": "x", "credential": {}},
            token=token,
        ),
    ]
    assert [(a.status, a.json["error"]) for a in answers] == [(403, "factor_not_allowed")] * 4


def test_bad_webauthn_requests_get_4xx_never_500(service: Service) -> None:
    bank, other = service.client("bank"), service.client("other")
    key = SoftAuthenticator()
    register(service, bank, "dave", key)
    base = "/v1/subjects/dave/webauthn"
    verify = f"{base}/authentications/verify"
    json_type = {"Content-Type": "application/json"}
    answers = {
        "unknown_subject": service.call(
            "POST", "/v1/subjects/nobody/webauthn/authentications/options", ADMIN, token=bank
        ),
        "other_tenant": service.call("POST", f"{base}/authentications/options", ADMIN, token=other),
        "not_enrolled": service.call(
            "POST", "/v1/subjects/erin/webauthn/authentications/options", ADMIN, token=bank
        ),
        "malformed_json": service.call(
            "POST", verify, raw=b'{"challenge', headers=json_type, token=bank
        ),
        "wrong_type": service.call(
            "POST", verify, raw=b"<xml/>", headers={"Content-Type": "text/xml"}, token=bank
        ),
        "oversized": service.call(
            "POST",
            verify,
            {**ADMIN, "challenge_id": "x", "credential": {"id": "A" * 20000}},
            token=bank,
        ),
        "credential_not_object": service.call(
            "POST", verify, {**ADMIN, "challenge_id": "x", "credential": "abc"}, token=bank
        ),
        "junk_credential": service.call(
            "POST", verify, {**ADMIN, "challenge_id": "x", "credential": {"id": 1}}, token=bank
        ),
        "unknown_challenge": service.call(
            "POST",
            verify,
            {**ADMIN, "challenge_id": "wac-nope", "credential": {"id": "x"}},
            token=bank,
        ),
    }
    # erin exists (a TOTP enrollment) but has no WebAuthn credential
    expected = {
        "unknown_subject": (404, "unknown_subject"),
        "other_tenant": (404, "unknown_subject"),
        "not_enrolled": (404, "unknown_subject"),
        "malformed_json": (400, "malformed_json"),
        "wrong_type": (415, "unsupported_media_type"),
        "oversized": (413, "body_too_large"),
        "credential_not_object": (422, "invalid_request"),
        "junk_credential": (404, "unknown_challenge"),
        "unknown_challenge": (404, "unknown_challenge"),
    }
    assert {name: (a.status, a.json["error"]) for name, a in answers.items()} == expected
    service.enrol_totp(bank, "erin")
    no_key = service.call(
        "POST", "/v1/subjects/erin/webauthn/authentications/options", ADMIN, token=bank
    )
    assert (no_key.status, no_key.json["error"]) == (404, "not_enrolled")


def test_the_admin_tier_requires_user_verification(service: Service) -> None:
    token = service.client("acme")
    key = SoftAuthenticator()
    register(service, token, "uma", key)
    options = service.call(
        "POST", "/v1/subjects/uma/webauthn/authentications/options", ADMIN, token=token
    )
    assert options.json["options"]["userVerification"] == "required"

    touched_only = authenticate(service, token, "uma", key, user_verified=False)

    assert (touched_only.status, touched_only.json["error"]) == (403, "user_verification_missing")

"""The MFA service over HTTP, as its callers and their attackers use it."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import jwt
import msgspec
import sqlalchemy as sa

from schemas.fields import Factor, PolicyTier
from verifiers.policy import tier_policy
from verifiers.publish import outbox_events
from verifiers.service.api import ServiceParts, create_app
from verifiers.service.assertions import ACR_MFA, ACR_RECOVERY
from verifiers.service.clients import CACHE_SECONDS, ServiceClients
from verifiers.service.server import open_parts
from verifiers.store import VerifierStore
from verifiers.tables import lockout_states

from .conftest import ISSUER, Clock, Service, service_config, start_server, stop_server


def events(service: Service) -> list[dict[str, object]]:
    """What the service's ceremonies put in the outbox, oldest first."""
    with service.parts.store.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_events.c.value).order_by("seq")).all()
    return [msgspec.json.decode(row.value) for row in rows]


def test_a_totp_step_up_returns_an_assertion_signed_with_a_published_key(
    service: Service,
) -> None:
    token = service.client("acme", audience="https://payroll.example")
    authenticator = service.enrol_totp(token, "alice")

    answer = service.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(service.clock()), "correlationid": "login-7"},
        token=token,
    )

    assert answer.status == 200, answer.body
    jwks = service.call("GET", "/.well-known/jwks.json").json
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(answer.json["assertion"])["kid"]]
    claims = jwt.decode(
        answer.json["assertion"],
        key.key,
        algorithms=["EdDSA"],
        audience="https://payroll.example",
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    moment = int(service.clock().timestamp())
    assert claims["sub"] == "alice" and claims["tenant"] == "acme"
    assert claims["amr"] == ["otp", "mfa"] and claims["acr"] == ACR_MFA
    assert claims["auth_time"] == claims["iat"] == moment
    assert claims["exp"] == moment + 300
    assert claims["jti"]
    succeeded = [e for e in events(service) if e["type"] == "mfa.verification.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0]["correlationid"] == "login-7" and succeeded[0]["tenant"] == "acme"


def test_requests_without_a_valid_client_credential_get_401(service: Service) -> None:
    token = service.client("acme")
    client_id = token.removeprefix("fsc_").split(".")[0]
    forged = f"fsc_{client_id}.{'A' * 43}"
    path = "/v1/subjects/alice/factors"

    missing = service.call("GET", path)
    wrong = service.call("GET", path, token=forged)
    garbage = service.call("GET", path, token="not-a-credential")
    basic = service.call("GET", path, headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert service.parts.clients.revoke(client_id, now=service.clock())
    revoked = service.call("GET", path, token=token)

    for answer in (missing, wrong, garbage, basic, revoked):
        assert answer.status == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json["error"] in ("unauthenticated", "invalid_credential")
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_a_client_of_one_tenant_cannot_see_or_touch_another_tenants_subjects(
    service: Service,
) -> None:
    bank, mallory = service.client("bank"), service.client("mallory-inc")
    authenticator = service.enrol_totp(bank, "alice")
    codes = service.call("POST", "/v1/subjects/alice/recovery-codes", token=bank).json["codes"]
    listed = service.call("GET", "/v1/subjects/alice/factors", token=bank).json
    enrollment_id = listed["factors"][0]["enrollment_id"]
    code = authenticator.at(service.clock())

    attempts = [
        service.call("GET", "/v1/subjects/alice/factors", token=mallory),
        service.call("POST", "/v1/subjects/alice/totp/verify", {"code": code}, token=mallory),
        service.call(
            "POST", "/v1/subjects/alice/recovery-codes/verify", {"code": codes[0]}, token=mallory
        ),
        service.call("DELETE", f"/v1/subjects/alice/factors/{enrollment_id}", token=mallory),
    ]

    for answer in attempts:
        assert answer.status == 404, answer.body
        assert answer.json["error"] == "unknown_subject"
    # the bank's subject is untouched: the code and the recovery code still work for it
    assert service.call("GET", "/v1/subjects/alice/factors", token=bank).json == listed
    assert (
        service.call("POST", "/v1/subjects/alice/totp/verify", {"code": code}, token=bank).status
        == 200
    )
    redeemed = service.call(
        "POST", "/v1/subjects/alice/recovery-codes/verify", {"code": codes[0]}, token=bank
    )
    assert redeemed.status == 200
    # a subject of the same name in the other tenant is another person
    service.enrol_totp(mallory, "alice")
    assert len(service.call("GET", "/v1/subjects/alice/factors", token=bank).json["factors"]) == 1


def test_a_totp_code_is_accepted_once(service: Service) -> None:
    token = service.client("acme")
    authenticator = service.enrol_totp(token, "alice")
    code = {"code": authenticator.at(service.clock())}

    first = service.call("POST", "/v1/subjects/alice/totp/verify", code, token=token)
    service.clock.advance(seconds=5)
    replayed = service.call("POST", "/v1/subjects/alice/totp/verify", code, token=token)

    assert first.status == 200
    assert replayed.status == 403 and replayed.json["error"] == "replayed"
    assert "assertion" not in replayed.json
    failed = [e for e in events(service) if e["type"] == "mfa.verification.failed"]
    assert [e["data"]["reason"] for e in failed] == ["replayed"]  # type: ignore[index]


def test_wrong_codes_lock_the_subject_and_a_locked_subject_is_refused_with_423(
    service: Service,
) -> None:
    token = service.client("acme")
    authenticator = service.enrol_totp(token, "bob", tier="business")
    failures = tier_policy(PolicyTier.BUSINESS).otp_max_failures  # the factor's own counter
    wrong = {"code": "000000", "tier": "business"}
    if authenticator.at(service.clock()) == "000000":
        wrong["code"] = "111111"

    answers = []
    for _ in range(failures):
        service.clock.advance(seconds=5)  # slower than a quick-login lockout
        answers.append(service.call("POST", "/v1/subjects/bob/totp/verify", wrong, token=token))
    right = {"code": authenticator.at(service.clock()), "tier": "business"}
    locked = service.call("POST", "/v1/subjects/bob/totp/verify", right, token=token)

    assert [a.json["error"] for a in answers] == ["invalid_code"] * failures
    assert "locked_until" not in answers[0].json
    assert "locked_until" in answers[-1].json
    assert locked.status == 423
    assert locked.json["error"] == "locked_out" and locked.json["locked_until"]
    service.clock.advance(minutes=4)  # the business tier's first lockout: 3 minutes
    right = {"code": authenticator.at(service.clock()), "tier": "business"}
    assert service.call("POST", "/v1/subjects/bob/totp/verify", right, token=token).status == 200


def test_recovery_codes_are_single_use_and_assert_recovery(service: Service) -> None:
    token = service.client("acme")
    codes = service.call("POST", "/v1/subjects/carol/recovery-codes", token=token)
    assert codes.status == 201 and len(codes.json["codes"]) == 10
    first = codes.json["codes"][0]

    used = service.call(
        "POST", "/v1/subjects/carol/recovery-codes/verify", {"code": first}, token=token
    )
    again = service.call(
        "POST", "/v1/subjects/carol/recovery-codes/verify", {"code": first}, token=token
    )

    assert used.status == 200
    assert used.json["amr"] == ["mfa"] and used.json["acr"] == ACR_RECOVERY
    assert again.status == 403 and again.json["error"] == "used_code"
    listed = service.call("GET", "/v1/subjects/carol/factors", token=token).json
    assert listed == {"factors": [], "recovery_codes_remaining": 9}


def test_a_removed_factor_no_longer_verifies_and_the_removal_is_an_event(
    service: Service,
) -> None:
    token = service.client("acme")
    authenticator = service.enrol_totp(token, "dave")
    service.call("POST", "/v1/subjects/dave/recovery-codes", token=token)
    enrollment_id = service.call("GET", "/v1/subjects/dave/factors", token=token).json["factors"][
        0
    ]["enrollment_id"]

    removed = service.call("DELETE", f"/v1/subjects/dave/factors/{enrollment_id}", token=token)
    again = service.call("DELETE", f"/v1/subjects/dave/factors/{enrollment_id}", token=token)
    verify = service.call(
        "POST",
        "/v1/subjects/dave/totp/verify",
        {"code": authenticator.at(service.clock())},
        token=token,
    )

    assert removed.status == 204
    assert again.status == 404 and again.json["error"] == "unknown_enrollment"
    assert verify.status == 404 and verify.json["error"] == "not_enrolled"
    (event,) = [e for e in events(service) if e["type"] == "mfa.enrollment.removed"]
    assert event["data"]["enrollment_id"] == enrollment_id  # type: ignore[index]


def test_bad_requests_get_machine_readable_4xx_never_500(service: Service) -> None:
    token = service.client("acme")
    service.enrol_totp(token, "erin")
    path = "/v1/subjects/erin/totp/verify"
    limit = service.parts.config.max_body_bytes
    json_type = {"Content-Type": "application/json"}

    answers = {
        "oversized": service.call("POST", path, {"code": "1" * (limit + 10)}, token=token),
        "wrong_type": service.call(
            "POST", path, token=token, raw=b"code=123456", headers={"Content-Type": "text/plain"}
        ),
        "no_type": service.call("POST", path, token=token, raw=b'{"code": "123456"}'),
        "malformed": service.call("POST", path, token=token, raw=b'{"code": ', headers=json_type),
        "not_an_object": service.call("POST", path, token=token, raw=b"[1]", headers=json_type),
        "missing_code": service.call("POST", path, {}, token=token),
        "code_not_text": service.call("POST", path, {"code": 123456}, token=token),
        "bad_tier": service.call("POST", path, {"code": "1", "tier": "god"}, token=token),
        "long_subject": service.call("GET", f"/v1/subjects/{'x' * 200}/factors", token=token),
        "no_route": service.call("GET", "/v1/nothing", token=token),
        "wrong_method": service.call("PUT", path, {"code": "1"}, token=token),
        "malformed_code": service.call("POST", path, {"code": "12ab56"}, token=token),
        "bad_ip": service.call("POST", path, {"code": "1", "ip": "999.1.1.1"}, token=token),
        "bad_correlation": service.call(
            "POST", path, {"code": "1", "correlationid": "a b"}, token=token
        ),
        "space_in_subject": service.call("GET", "/v1/subjects/al%20ice/factors", token=token),
    }

    expected = {
        "oversized": (413, "body_too_large"),
        "wrong_type": (415, "unsupported_media_type"),
        "no_type": (415, "unsupported_media_type"),
        "malformed": (400, "malformed_json"),
        "not_an_object": (422, "invalid_request"),
        "missing_code": (422, "invalid_request"),
        "code_not_text": (422, "invalid_request"),
        "bad_tier": (422, "invalid_request"),
        "long_subject": (422, "invalid_request"),
        "no_route": (404, "not_found"),
        "wrong_method": (405, "method_not_allowed"),
        "malformed_code": (403, "malformed_code"),
        "bad_ip": (422, "invalid_request"),
        "bad_correlation": (422, "invalid_request"),
        "space_in_subject": (422, "invalid_request"),
    }
    found = {name: (a.status, a.json.get("error")) for name, a in answers.items()}
    assert found == expected
    for answer in answers.values():
        assert answer.headers["content-type"] == "application/problem+json"
        assert set(answer.json) >= {"error", "detail", "status"}


def test_a_body_larger_than_it_declares_is_cut_off_at_the_limit(service: Service) -> None:
    """Chunked transfer has no Content-Length to check: the guard counts what arrives."""
    token = service.client("acme")
    limit = service.parts.config.max_body_bytes
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        chunk = b'{"code": "' + b"1" * 1000
        connection.putrequest("POST", "/v1/subjects/erin/totp/verify")
        connection.putheader("Authorization", f"Bearer {token}")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for _ in range(limit // 1000 + 2):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == "body_too_large"
    finally:
        connection.close()


def test_a_factor_the_tier_does_not_accept_is_refused(tmp_path: Path, clock: Clock) -> None:
    parts = open_parts(service_config(tmp_path), clock=clock)
    no_totp = {
        **parts.store.tiers,
        PolicyTier.BUSINESS: tier_policy(
            PolicyTier.BUSINESS, required_factors=(Factor.PUSH,), fallback_factors=(Factor.SMS,)
        ),
    }
    store = VerifierStore(parts.store.engine, parts.store.box, source="urn:test", tiers=no_totp)
    strict = ServiceParts(parts.config, store, ServiceClients(store.engine), parts.keys, clock)
    running = start_server(create_app(strict))
    try:
        service = Service("127.0.0.1", running.port, strict, clock)
        token = service.client("acme")
        service.enrol_totp(token, "frank")  # the customer tier accepts TOTP
        code = {"code": "123456", "tier": "business"}
        refused = service.call("POST", "/v1/subjects/frank/totp/verify", code, token=token)
        enrol = service.call(
            "POST", "/v1/subjects/frank/totp/enrollments", {"tier": "business"}, token=token
        )
    finally:
        stop_server(running)
    assert refused.status == 403 and refused.json["error"] == "factor_not_allowed"
    assert enrol.status == 403 and enrol.json["error"] == "factor_not_allowed"


def test_the_openapi_document_describes_the_versioned_api(service: Service) -> None:
    document = service.call("GET", "/openapi.json").json
    paths = set(document["paths"])
    assert {
        "/v1/subjects/{subject}/totp/enrollments",
        "/v1/subjects/{subject}/totp/enrollments/{enrollment_id}/confirm",
        "/v1/subjects/{subject}/totp/verify",
        "/v1/subjects/{subject}/recovery-codes",
        "/v1/subjects/{subject}/recovery-codes/verify",
        "/v1/subjects/{subject}/factors",
        "/v1/subjects/{subject}/factors/{enrollment_id}",
        "/v1/subjects/{subject}/webauthn/registrations/options",
        "/v1/subjects/{subject}/webauthn/registrations/verify",
        "/v1/subjects/{subject}/webauthn/authentications/options",
        "/v1/subjects/{subject}/webauthn/authentications/verify",
        "/v1/subjects/{subject}/otp/enrollments",
        "/v1/subjects/{subject}/otp/enrollments/{enrollment_id}/confirm",
        "/v1/subjects/{subject}/otp/send",
        "/v1/subjects/{subject}/otp/verify",
        "/v1/subjects/{subject}/push/enrollments",
        "/v1/subjects/{subject}/push/enrollments/{enrollment_id}/confirm",
        "/v1/subjects/{subject}/push/send",
        "/v1/subjects/{subject}/push/respond",
        "/.well-known/jwks.json",
    } <= paths
    respond = document["paths"]["/v1/subjects/{subject}/push/respond"]["post"]
    assert {"409", "423", "429"} <= set(respond["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["PushRespondBody"]["required"]) == {"challenge_id", "decision"}
    assert all(p.startswith("/v1/") or p.startswith("/.well-known/") for p in paths)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_an_infrastructure_failure_is_a_json_500_that_says_nothing_inside(
    service: Service,
) -> None:
    token = service.client("acme")
    with service.parts.store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE recovery_codes")  # the database breaks

    answer = service.call("GET", "/v1/subjects/alice/factors", token=token)

    assert answer.status == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["error"] == "internal_error"
    assert "recovery_codes" not in answer.body.decode()


def test_a_revoked_credential_is_refused_within_the_cache_bound(
    tmp_path: Path, clock: Clock
) -> None:
    parts = open_parts(service_config(tmp_path), clock=clock)
    elapsed = [0.0]
    cached = ServiceClients(parts.store.engine, monotonic=lambda: elapsed[0])
    served = ServiceParts(parts.config, parts.store, cached, parts.keys, clock)
    running = start_server(create_app(served))
    path = "/v1/subjects/alice/factors"
    try:
        service = Service("127.0.0.1", running.port, served, clock)
        kept, dropped = service.client("acme"), service.client("acme")
        kept_id, dropped_id = (t.removeprefix("fsc_").split(".")[0] for t in (kept, dropped))
        assert service.call("GET", path, token=kept).status == 404  # authenticated, cached
        assert service.call("GET", path, token=dropped).status == 404
        # a forged secret for a client id the cache knows is still checked, and refused
        forged = service.call("GET", path, token=f"fsc_{kept_id}.{'A' * 43}")
        # revoked by the service's own clients: refused at once
        assert cached.revoke(dropped_id, now=clock())
        at_once = service.call("GET", path, token=dropped)
        # revoked elsewhere (the CLI, another process): refused once the cache entry expires
        assert ServiceClients(parts.store.engine).revoke(kept_id, now=clock())
        elapsed[0] += CACHE_SECONDS - 0.5
        within = service.call("GET", path, token=kept)
        elapsed[0] += 0.5
        after = service.call("GET", path, token=kept)
    finally:
        stop_server(running)
    assert forged.status == 401 and at_once.status == 401 and after.status == 401
    assert within.status == 404  # the documented bound: at most CACHE_SECONDS
    assert CACHE_SECONDS <= 5


def test_verifying_an_unknown_subject_is_404_and_becomes_no_subject(service: Service) -> None:
    token = service.client("acme")
    codes = service.call("POST", "/v1/subjects/bob/recovery-codes", token=token)
    assert codes.status == 201
    before = events(service)

    unknown = [
        service.call("POST", "/v1/subjects/nobody/totp/verify", {"code": "123456"}, token=token)
        for _ in range(12)  # more than any lockout threshold
    ]
    only_codes = service.call(
        "POST", "/v1/subjects/bob/totp/verify", {"code": "123456"}, token=token
    )

    for answer in unknown:
        assert answer.status == 404 and answer.json["error"] == "unknown_subject"
    assert unknown[0].body == unknown[-1].body
    # a subject with something enrolled but no TOTP is known: its own 404, recorded
    assert only_codes.status == 404 and only_codes.json["error"] == "not_enrolled"
    recorded = events(service)[len(before) :]
    refusals = [e for e in recorded if e["type"] == "service.request.refused"]
    assert [e["subject"] for e in recorded if e not in refusals] == ["bob"]
    # the trail shows the refusals, filed under no subject of their own: a made-up name
    # becomes no subject of the pipeline
    assert len(refusals) == 12
    assert {(e["subject"], e["data"]["error"], e["data"]["named_subject"]) for e in refusals} == {
        ("unknown", "unknown_subject", "nobody")
    }
    with service.parts.store.engine.connect() as connection:
        states = connection.execute(sa.select(lockout_states.c.subject)).scalars().all()
    assert "nobody" not in states

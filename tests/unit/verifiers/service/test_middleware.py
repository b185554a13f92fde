"""``require_mfa`` in front of real ASGI and WSGI apps, against the tokens an attacker makes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from verifiers.service.assertions import ACR_MFA, ACR_RECOVERY
from verifiers.service.middleware import MfaGate, require_mfa

from .conftest import ISSUER, Clock, Service, start_server, stop_server

APP = "https://payroll.example"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def reassemble(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


@pytest.fixture
def tokens(service: Service) -> dict[str, str]:
    """Real assertions from the service: TOTP and recovery for APP, TOTP for another app."""
    token = service.client("acme", audience=APP)
    other = service.client("acme", audience="https://other.example")
    authenticator = service.enrol_totp(token, "alice")
    code = authenticator.at(service.clock())
    totp = service.call("POST", "/v1/subjects/alice/totp/verify", {"code": code}, token=token)
    service.clock.advance(seconds=30)
    code = authenticator.at(service.clock())
    elsewhere = service.call("POST", "/v1/subjects/alice/totp/verify", {"code": code}, token=other)
    codes = service.call("POST", "/v1/subjects/alice/recovery-codes", token=token).json["codes"]
    recovery = service.call(
        "POST", "/v1/subjects/alice/recovery-codes/verify", {"code": codes[0]}, token=token
    )
    found = {"totp": totp, "elsewhere": elsewhere, "recovery": recovery}
    assert all(a.status == 200 for a in found.values()), found
    return {name: answer.json["assertion"] for name, answer in found.items()}


def forgeries(service: Service, genuine: str) -> dict[str, str]:
    """What an attacker builds from one genuine assertion and the published keys."""
    head, body, signature = genuine.split(".")
    header, claims = json.loads(unb64(head)), json.loads(unb64(body))
    public = service.parts.keys.current.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_x = service.parts.keys.jwks()["keys"][0]["x"]
    promoted = {**claims, "sub": "admin", "exp": claims["exp"] + 86400}

    def hs256(secret: bytes) -> str:
        first = {"alg": "HS256", "kid": header["kid"], "typ": "JWT"}
        signing_input = f"{b64(json.dumps(first).encode())}.{b64(json.dumps(promoted).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    other_key = Ed25519PrivateKey.generate()
    return {
        "payload_changed": f"{head}.{b64(json.dumps(promoted).encode())}.{signature}",
        "another_key": jwt.encode(promoted, other_key, algorithm="EdDSA", headers=header),
        "alg_none": reassemble({"alg": "none", "typ": "JWT"}, promoted, b""),
        "alg_none_with_kid": reassemble({**header, "alg": "none"}, promoted, b""),
        "hs256_public_pem": hs256(pem),
        "hs256_jwk_x": hs256(jwk_x.encode()),
        "signature_dropped": f"{head}.{body}.",
        "not_a_jwt": "garbage",
    }


def asgi_app() -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.dumps(scope["state"]["mfa"]).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(environ["factorstream.mfa"]).encode()]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def serve_wsgi(app: Any) -> Iterator[int]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def get(port: int, token: str | None) -> tuple[int, Any, Any]:
    """(status, headers (case-insensitive), JSON body) of ``GET /payroll``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        connection.request("GET", "/payroll", headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(params=["asgi", "wsgi"])
def guarded(
    request: pytest.FixtureRequest, service: Service, clock: Clock
) -> Iterator[Callable[[MfaGate], int]]:
    """``guarded(gate)``: the port of a real app (ASGI under uvicorn, or WSGI under wsgiref)
    behind ``gate``."""
    stops: list[Callable[[], None]] = []

    def start(gate: MfaGate) -> int:
        if request.param == "asgi":
            running = start_server(gate.asgi(asgi_app()))
            stops.append(lambda: stop_server(running))
            return running.port
        serving = serve_wsgi(gate.wsgi(wsgi_app))
        port = next(serving)
        stops.append(lambda: next(serving, None))
        return port

    yield start
    for stop in stops:
        stop()


def gate_for(service: Service, clock: Clock, **requirement: Any) -> MfaGate:
    return require_mfa(
        jwks_url=f"{service.url}/.well-known/jwks.json",
        audience=requirement.pop("audience", APP),
        issuer=ISSUER,
        clock=clock,
        **requirement,
    )


def test_a_genuine_assertion_passes_with_its_claims(
    service: Service, clock: Clock, tokens: dict[str, str], guarded: Callable[[MfaGate], int]
) -> None:
    port = guarded(gate_for(service, clock, max_age=timedelta(minutes=5), amr_any=["otp"]))
    status, _, claims = get(port, tokens["totp"])
    assert status == 200
    assert claims["sub"] == "alice" and claims["tenant"] == "acme" and "otp" in claims["amr"]


def test_forged_assertions_are_refused(
    service: Service, clock: Clock, tokens: dict[str, str], guarded: Callable[[MfaGate], int]
) -> None:
    port = guarded(gate_for(service, clock))
    why = {
        "payload_changed": "the signature does not verify",
        "another_key": "the signature does not verify",
        "alg_none": "algorithm 'none' is not accepted",
        "alg_none_with_kid": "algorithm 'none' is not accepted",
        "hs256_public_pem": "algorithm 'HS256' is not accepted",
        "hs256_jwk_x": "algorithm 'HS256' is not accepted",
        "signature_dropped": "the signature does not verify",
        "not_a_jwt": "the MFA assertion is not a JWT",
    }
    found = {}
    for name, forged in forgeries(service, tokens["totp"]).items():
        status, headers, body = get(port, forged)
        assert status == 401, name
        assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), name
        assert body["error"] == "invalid_token", name
        found[name] = body["detail"]
    assert found == why


def www_authenticate(port: int, token: str | None) -> str:
    status, headers, body = get(port, token)
    assert status == 401
    assert body["detail"] in headers["WWW-Authenticate"]
    return headers["WWW-Authenticate"]


def test_each_refusal_says_what_is_missing(
    service: Service, clock: Clock, tokens: dict[str, str], guarded: Callable[[MfaGate], int]
) -> None:
    issued: datetime = clock()
    strict = guarded(
        gate_for(service, clock, max_age=timedelta(minutes=1), acr=ACR_MFA, amr_any=["otp"])
    )
    hardware = guarded(gate_for(service, clock, amr_any=["hwk", "swk"]))

    assert "an MFA assertion is required" in www_authenticate(strict, None)
    assert "not for audience 'https://payroll.example'" in www_authenticate(
        strict, tokens["elsewhere"]
    )
    recovery = www_authenticate(strict, tokens["recovery"])
    assert 'error="insufficient_user_authentication"' in recovery
    assert f'acr_values="{ACR_MFA}"' in recovery and ACR_RECOVERY in recovery
    missing_amr = www_authenticate(hardware, tokens["totp"])
    assert 'error="insufficient_user_authentication"' in missing_amr
    assert "none of the methods required" in missing_amr

    clock.now = issued + timedelta(minutes=3)  # still valid, but authenticated too long ago
    too_old = www_authenticate(strict, tokens["totp"])
    assert 'error="insufficient_user_authentication"' in too_old and 'max_age="60"' in too_old

    clock.now = issued + timedelta(minutes=10)  # past exp (5 minutes) and the leeway
    expired = www_authenticate(strict, tokens["totp"])
    assert 'error="invalid_token"' in expired and "expired" in expired


def test_an_assertion_without_amr_or_dated_ahead_is_refused(service: Service, clock: Clock) -> None:
    keys = service.parts.keys
    base = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": APP,
        "auth_time": int(clock().timestamp()),
        "iat": int(clock().timestamp()),
        "exp": int(clock().timestamp()) + 300,
        "jti": "j-1",
        "amr": ["otp"],
    }
    gate = require_mfa(keys=keys.jwks(), audience=APP, issuer=ISSUER, clock=clock)

    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, keys.current, algorithm="EdDSA", headers={"kid": keys.kid})

    no_amr = {k: v for k, v in base.items() if k != "amr"}
    ahead = {**base, "iat": base["iat"] + 3600, "auth_time": base["auth_time"] + 3600}
    for claims, message in (
        (no_amr, "lacks the amr claim"),
        (ahead, "dated in the future"),
        ({**base, "iss": "https://evil.example"}, "another issuer"),
        ({**base, "amr": "otp"}, "not a list"),
    ):
        status, headers, _ = _check(gate, sign(claims))
        assert status == 401 and message in headers, message
    assert _check(gate, sign(base))[0] == 200


def _check(gate: MfaGate, token: str) -> tuple[int, str, dict[str, Any]]:
    """The WSGI gate called in process: (status, WWW-Authenticate, claims)."""
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    def app(environ: dict[str, Any], respond: Callable[..., Any]) -> Iterable[bytes]:
        respond("200 OK", [])
        return [b""]

    environ = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    list(gate.wsgi(app)(environ, start_response))
    return seen["status"], seen["headers"].get("WWW-Authenticate", ""), environ

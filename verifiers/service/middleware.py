"""``require_mfa``: the gate a relying party puts in front of an ASGI or WSGI app.

    gate = require_mfa(jwks_url="https://mfa.example/.well-known/jwks.json",
                       audience="https://payroll.example", max_age=timedelta(minutes=5),
                       amr_any=["otp"])
    app = gate.asgi(app)          # or: app = gate.wsgi(app)

Every request must carry the service's assertion as ``Authorization: Bearer <jwt>``. One
that does not passes nothing to the app: it gets 401 and a ``WWW-Authenticate`` header
saying what is wrong, RFC 6750's ``invalid_token`` (missing, malformed, not signed by a
published key, expired, wrong audience or issuer) or RFC 9470's
``insufficient_user_authentication`` (authentication too old for ``max_age``, another
``acr``, none of ``amr_any``). The verified claims are handed to the app as
``scope["state"]["mfa"]`` (ASGI; ``request.state.mfa`` in Starlette) or
``environ["factorstream.mfa"]`` (WSGI).

Only EdDSA is accepted, whatever the token's header says (no ``none``, no HMAC with a
public key as secret); the signature is checked by PyJWT. Times are judged here against
the clock the gate is given, with ``leeway`` for clock skew.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from verifiers.service import require_extra

require_extra("jwt", "cryptography")

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifiers.service.assertions import ALGORITHM, key_id

INVALID_TOKEN = "invalid_token"  # noqa: S105 - an RFC 6750 error code
INSUFFICIENT = "insufficient_user_authentication"
REQUIRED_CLAIMS = ("sub", "aud", "exp", "iat", "auth_time", "jti", "amr")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MfaRefused(Exception):
    """An assertion that does not satisfy the requirement, and why (RFC 6750 / 9470)."""

    def __init__(self, error: str, description: str, **parameters: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.parameters = parameters

    def www_authenticate(self) -> str:
        values = {"error": self.error, "error_description": self.description, **self.parameters}
        quoted = ", ".join(f'{name}="{_quotable(value)}"' for name, value in values.items())
        return f"Bearer {quoted}"

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "detail": self.description}).encode()


def _quotable(text: str) -> str:
    return re.sub(r'[^\x20-\x7e]|["\\]', "'", text)


@dataclass(frozen=True)
class MfaRequirement:
    """What an assertion must say to be let through."""

    audience: str
    issuer: str | None = None
    max_age: timedelta | None = None
    """``auth_time`` no longer ago than this."""
    acr: Sequence[str] = ()
    """One of these ``acr`` values (empty: any)."""
    amr_any: Sequence[str] = ()
    """At least one of these ``amr`` values (empty: any)."""
    leeway: timedelta = timedelta(seconds=30)


def judge_claims(claims: Mapping[str, Any], requirement: MfaRequirement, *, now: datetime) -> None:
    """Refuse (:class:`MfaRefused`) signed claims that do not meet ``requirement`` at ``now``."""
    moment, leeway = now.timestamp(), requirement.leeway.total_seconds()
    for name in ("exp", "iat", "auth_time"):
        if isinstance(claims[name], bool) or not isinstance(claims[name], int | float):
            raise MfaRefused(INVALID_TOKEN, f"the {name} claim is not a number")
    if claims["exp"] <= moment - leeway:
        raise MfaRefused(INVALID_TOKEN, "the MFA assertion has expired")
    if claims["iat"] > moment + leeway or claims["auth_time"] > moment + leeway:
        raise MfaRefused(INVALID_TOKEN, "the MFA assertion is dated in the future")
    if requirement.max_age is not None:
        age = moment - claims["auth_time"]
        limit = requirement.max_age.total_seconds()
        if age > limit + leeway:
            raise MfaRefused(
                INSUFFICIENT,
                f"authentication is {int(age)} s old, more than max_age {int(limit)} s",
                max_age=str(int(limit)),
            )
    if requirement.acr and claims.get("acr") not in requirement.acr:
        raise MfaRefused(
            INSUFFICIENT,
            f"acr {claims.get('acr')!r} is not one of {list(requirement.acr)}",
            acr_values=" ".join(requirement.acr),
        )
    amr = claims["amr"]
    if not isinstance(amr, list):
        raise MfaRefused(INVALID_TOKEN, "the amr claim is not a list")
    if requirement.amr_any and not set(amr) & set(requirement.amr_any):
        raise MfaRefused(
            INSUFFICIENT, f"amr {amr} has none of the methods required: {list(requirement.amr_any)}"
        )


class KeySource(Protocol):
    remote: bool

    def key_for(self, kid: str) -> Any:
        """The public key with id ``kid`` (``MfaRefused`` if none is published)."""


@dataclass
class StaticKeys:
    """Keys given in code: a JWKS document, or Ed25519 public keys."""

    keys: Mapping[str, Any] | Sequence[Ed25519PublicKey]
    remote: bool = False
    _by_kid: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.keys, Mapping):
            for jwk in jwt.PyJWKSet.from_dict(dict(self.keys)).keys:
                if jwk.key_id:
                    self._by_kid[jwk.key_id] = jwk.key
        else:
            self._by_kid = {key_id(key): key for key in self.keys}

    def key_for(self, kid: str) -> Any:
        try:
            return self._by_kid[kid]
        except KeyError:
            raise MfaRefused(INVALID_TOKEN, "the MFA assertion is signed by no known key") from None


class RemoteKeys:
    """The JWKS at a URL, cached, fetched again when a token names an unknown key."""

    remote = True

    def __init__(self, url: str, *, lifespan: timedelta = timedelta(minutes=5)) -> None:
        self.client = jwt.PyJWKClient(url, lifespan=int(lifespan.total_seconds()), timeout=5)

    def key_for(self, kid: str) -> Any:
        try:
            return self.client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise MfaRefused(INVALID_TOKEN, "the signing keys could not be fetched") from None
        except jwt.PyJWKClientError:
            raise MfaRefused(INVALID_TOKEN, "the MFA assertion is signed by no known key") from None


def verify_assertion(
    token: str, keys: KeySource, requirement: MfaRequirement, *, now: datetime
) -> dict[str, Any]:
    """The claims of ``token`` if it is a valid assertion meeting ``requirement``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise MfaRefused(INVALID_TOKEN, "the MFA assertion is not a JWT") from None
    if header.get("alg") != ALGORITHM:
        raise MfaRefused(INVALID_TOKEN, f"algorithm {header.get('alg')!r} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise MfaRefused(INVALID_TOKEN, "the MFA assertion names no key (kid)")
    key = keys.key_for(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=requirement.audience,
            issuer=requirement.issuer,
            options={
                "verify_exp": False,  # judged below against the gate's clock
                "verify_iat": False,
                "verify_nbf": False,
                "require": list(REQUIRED_CLAIMS),
            },
        )
    except jwt.InvalidSignatureError:
        raise MfaRefused(INVALID_TOKEN, "the signature does not verify") from None
    except jwt.InvalidAudienceError:
        raise MfaRefused(
            INVALID_TOKEN, f"the MFA assertion is not for audience {requirement.audience!r}"
        ) from None
    except jwt.InvalidIssuerError:
        raise MfaRefused(INVALID_TOKEN, "the MFA assertion is from another issuer") from None
    except jwt.MissingRequiredClaimError as error:
        raise MfaRefused(
            INVALID_TOKEN, f"the MFA assertion lacks the {error.claim} claim"
        ) from None
    except jwt.InvalidTokenError as error:
        raise MfaRefused(INVALID_TOKEN, f"the MFA assertion is invalid: {error}") from None
    judge_claims(claims, requirement, now=now)
    return claims


def utc_now() -> datetime:
    return datetime.now(UTC)


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header."""
    if not authorization:
        raise MfaRefused(INVALID_TOKEN, "an MFA assertion is required (Authorization: Bearer)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MfaRefused(INVALID_TOKEN, "the Authorization header is not a Bearer token")
    return token.strip()


@dataclass(frozen=True)
class MfaGate:
    """Checks assertions for one requirement; wraps ASGI and WSGI apps."""

    keys: KeySource
    requirement: MfaRequirement
    clock: Callable[[], datetime] = utc_now

    def check(self, authorization: str | None) -> dict[str, Any]:
        return verify_assertion(
            bearer(authorization), self.keys, self.requirement, now=self.clock()
        )

    def asgi(self, app: AsgiApp) -> AsgiApp:
        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            header = _asgi_header(scope, b"authorization")
            try:
                if self.keys.remote:
                    claims = await asyncio.to_thread(self.check, header)
                else:
                    claims = self.check(header)
            except MfaRefused as refused:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await _asgi_refuse(send, refused)
                return
            scope.setdefault("state", {})["mfa"] = claims
            await app(scope, receive, send)

        return gated

    def wsgi(self, app: WsgiApp) -> WsgiApp:
        def gated(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            try:
                claims = self.check(environ.get("HTTP_AUTHORIZATION"))
            except MfaRefused as refused:
                body = refused.body()
                start_response(
                    "401 Unauthorized",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("WWW-Authenticate", refused.www_authenticate()),
                    ],
                )
                return [body]
            environ["factorstream.mfa"] = claims
            return app(environ, start_response)

        return gated


def _asgi_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _asgi_refuse(send: Send, refused: MfaRefused) -> None:
    body = refused.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", refused.www_authenticate().encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def require_mfa(
    *,
    audience: str,
    jwks_url: str | None = None,
    keys: Mapping[str, Any] | Sequence[Ed25519PublicKey] | None = None,
    issuer: str | None = None,
    max_age: timedelta | None = None,
    acr: str | Sequence[str] | None = None,
    amr_any: Sequence[str] = (),
    leeway: timedelta = timedelta(seconds=30),
    clock: Callable[[], datetime] = utc_now,
) -> MfaGate:
    """A gate accepting the service's assertions for ``audience`` (see the module doc).
    Keys: ``jwks_url`` (fetched and cached) or ``keys`` (a JWKS document or public keys)."""
    if (jwks_url is None) == (keys is None):
        raise ValueError("require_mfa: give exactly one of jwks_url and keys")
    source: KeySource = RemoteKeys(jwks_url) if jwks_url is not None else StaticKeys(keys or ())
    acrs = (acr,) if isinstance(acr, str) else tuple(acr or ())
    requirement = MfaRequirement(audience, issuer, max_age, acrs, tuple(amr_any), leeway)
    return MfaGate(source, requirement, clock)

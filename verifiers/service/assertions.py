"""Signed MFA assertions: a JWT (EdDSA, Ed25519) that says who passed which factor, when.

Claims: ``iss``, ``sub`` (the subject), ``tenant``, ``aud`` (the calling client's
audience), ``amr`` (RFC 8176), ``acr``, ``auth_time``, ``iat``, ``exp``, ``jti``.

* TOTP: ``amr = ["otp", "mfa"]``, ``acr =`` :data:`ACR_MFA`.
* WebAuthn: ``["hwk", "mfa"]`` (device-bound credential) or ``["swk", "mfa"]`` (synced
  passkey); ``fpt``/``face`` are never claimed: user verification does not say how.
* SMS: ``["sms", "mfa"]``; voice call: ``["tel", "mfa"]``; e-mail code: ``["mfa"]``
  (RFC 8176 has no e-mail method; ``otp`` would let it pass for an authenticator app).
* Push approved with a signature of the enrolled device key: ``["pop", "mfa"]``.
* A recovery code: ``amr = ["mfa"]``, ``acr =`` :data:`ACR_RECOVERY`. RFC 8176 has no
  method for a look-up secret, and calling it ``otp`` would let a relying party that asks
  for an authenticator (``amr_any=["otp"]``) accept a code printed on paper; a relying
  party that accepts recovery asks for :data:`ACR_RECOVERY` explicitly.
* A temporary-access code (``verifiers/override.py``): ``amr = []``, ``acr =``
  :data:`ACR_TEMPORARY_ACCESS`; only a relying party that asks for it accepts it.

The key id (``kid``) is the RFC 7638 thumbprint of the public key. Rotation writes the
old public key beside the new private key (``<name>.retired-<kid>.pub.pem``); the JWKS
publishes the current key and every retired one, so assertions signed before a rotation
verify until they expire (remove a retired file to stop publishing it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from verifiers.service import require_extra

require_extra("jwt", "cryptography")

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from verifiers.service.keyfiles import write_private

ALGORITHM = "EdDSA"
ACR_MFA = "urn:factorstream:acr:mfa"
"""A second factor that is an authenticator (TOTP today)."""
ACR_RECOVERY = "urn:factorstream:acr:recovery"
"""A single-use recovery code: the account was recovered, not stepped up by a device."""
ACR_TEMPORARY_ACCESS = "urn:factorstream:acr:temporary-access"
"""A temporary-access code two administrators granted (``verifiers/override.py``): the
person got in without any factor of theirs, past any lock."""
AMR_TOTP = ("otp", "mfa")
AMR_RECOVERY = ("mfa",)
AMR_TEMPORARY_ACCESS: tuple[str, ...] = ()
"""A code two administrators handed over: no method of the person's own, so none is claimed
(``otp`` or ``mfa`` would let it pass where a relying party asks for an authenticator)."""
AMR_HARDWARE_KEY = ("hwk", "mfa")
"""WebAuthn with a device-bound credential (not backup eligible)."""
AMR_SOFTWARE_KEY = ("swk", "mfa")
"""WebAuthn with a synced passkey (backup eligible: the key leaves the device)."""
AMR_SMS = ("sms", "mfa")
AMR_VOICE = ("tel", "mfa")
AMR_EMAIL = ("mfa",)
"""RFC 8176 has no method for a code sent by e-mail (see the recovery code's reasoning)."""
AMR_PUSH = ("pop", "mfa")
"""Push: the device proved possession of its enrolled key (hardware or software: unknown)."""


class AssertionKeyError(ValueError):
    """A signing key file that is not an unencrypted Ed25519 PEM private key."""


def key_id(public: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint of ``public`` (base64url, no padding)."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _raw_x(public)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _raw_x(public),
        "kid": key_id(public),
        "alg": ALGORITHM,
        "use": "sig",
    }


def _raw_x(public: Ed25519PublicKey) -> str:
    return _b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class AssertionKeys:
    """The signing key in ``path`` (created on first use, mode 0600) and retired ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = self._load_or_create()

    def _load_or_create(self) -> Ed25519PrivateKey:
        if not self.path.exists():
            key = Ed25519PrivateKey.generate()
            try:
                write_private(self.path, _private_pem(key))
            except FileExistsError:  # another process created it first: use theirs
                pass
            else:
                return key
        try:
            loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise AssertionKeyError(f"{self.path}: not an unencrypted PEM key: {error}") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise AssertionKeyError(f"{self.path} holds a key that is not Ed25519")
        return loaded

    @property
    def kid(self) -> str:
        return key_id(self.current.public_key())

    def retired(self) -> list[Ed25519PublicKey]:
        """The public keys of earlier signing keys, still published."""
        keys = []
        for file in sorted(self.path.parent.glob(f"{self.path.name}.retired-*.pub.pem")):
            loaded = serialization.load_pem_public_key(file.read_bytes())
            if isinstance(loaded, Ed25519PublicKey):
                keys.append(loaded)
        return keys

    def published(self) -> list[Ed25519PublicKey]:
        """The key this process signs with, the one in the file if another process rotated
        it since (published before it signs anything), and the retired ones; each once."""
        keys = [self.current.public_key()]
        if self.path.exists():
            on_disk = self._load_or_create().public_key()
            keys.append(on_disk)
        unique: dict[str, Ed25519PublicKey] = {}
        for key in [*keys, *self.retired()]:
            unique.setdefault(key_id(key), key)
        return list(unique.values())

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set relying parties verify assertions with."""
        return {"keys": [public_jwk(key) for key in self.published()]}

    def rotate(self) -> str:
        """Sign with a new key from now on; the old public key stays published. Returns the
        new key id. A process that loaded the old key keeps signing with it until restarted,
        and publishes the new one from now on."""
        old = self.current.public_key()
        retired = self.path.with_name(f"{self.path.name}.retired-{key_id(old)}.pub.pem")
        if not retired.exists():
            write_private(retired, _public_pem(old))
        new = Ed25519PrivateKey.generate()
        staging = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        write_private(staging, _private_pem(new))
        os.replace(staging, self.path)
        self.current = new
        return self.kid


@dataclass(frozen=True)
class AssertionRequest:
    """What one successful step-up asserts."""

    issuer: str
    subject: str
    tenant: str
    audience: str
    amr: Sequence[str]
    acr: str
    auth_time: datetime
    lifetime: timedelta


def assertion_claims(request: AssertionRequest, *, now: datetime, jti: str) -> dict[str, Any]:
    """The claims of an assertion issued at ``now`` (pure)."""
    issued = int(now.timestamp())
    return {
        "iss": request.issuer,
        "sub": request.subject,
        "tenant": request.tenant,
        "aud": request.audience,
        "amr": list(request.amr),
        "acr": request.acr,
        "auth_time": int(request.auth_time.timestamp()),
        "iat": issued,
        "exp": issued + int(request.lifetime.total_seconds()),
        "jti": jti,
    }


def sign_assertion(keys: AssertionKeys, request: AssertionRequest, *, now: datetime) -> str:
    """The assertion as a compact JWS, signed with the current key."""
    claims = assertion_claims(request, now=now, jti=str(uuid.uuid4()))
    return jwt.encode(
        claims, keys.current, algorithm=ALGORITHM, headers={"kid": keys.kid, "typ": "JWT"}
    )

"""The key a push device signs with: one Ed25519 key pair per push enrollment.

The phone makes the key pair when it enrols and sends the public half as a JWK
(RFC 8037: ``{"kty": "OKP", "crv": "Ed25519", "x": <base64url of the 32 raw bytes>}``);
the private half never leaves it. Its key id is the RFC 7638 thumbprint of that JWK.

Everything the phone signs is a *canonical byte string*: compact JSON with sorted keys,
ASCII only (``json.dumps(…, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``),
whose ``purpose`` member names what it is, so a signature made for one purpose or one
challenge never passes for another:

* :func:`enrollment_bytes` — proof of possession at enrollment: purpose, tenant, subject,
  enrollment id and the key's own thumbprint.
* :func:`answer_bytes` — an answer to a push: purpose, tenant, subject, challenge id,
  decision and the number the person typed (``null`` when none).

Signatures travel as base64url without padding. :func:`check_signature` returns why a
signature is refused (``unsigned``, ``unknown_device_key``, ``bad_signature``) or ``None``;
it never raises for what a client sent. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ENROLLMENT_PURPOSE = "factorstream.push.enrollment.v1"
ANSWER_PURPOSE = "factorstream.push.answer.v1"
RAW_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_ENCODED = 128


class DeviceKeyError(ValueError):
    """A device public key that is not an Ed25519 JWK (what is wrong, never the key)."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: object) -> bytes | None:
    """The bytes of unpadded base64url ``text``, or ``None`` if it is not that."""
    if not isinstance(text, str) or len(text) > MAX_ENCODED or "=" in text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if b64url(raw) == text else None  # one spelling per byte string


def parse_jwk(jwk: object) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as a JWK; :class:`DeviceKeyError`
    when it is anything else (another key type or curve, a private key, a bad ``x``)."""
    if not isinstance(jwk, Mapping):
        raise DeviceKeyError("expected a JWK object")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise DeviceKeyError('expected kty "OKP" and crv "Ed25519"')
    if "d" in jwk:
        raise DeviceKeyError("expected a public key; the JWK holds a private key (d)")
    raw = unb64url(jwk.get("x"))
    if raw is None or len(raw) != RAW_KEY_BYTES:
        raise DeviceKeyError("expected x: 32 bytes, base64url without padding")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise DeviceKeyError("expected x: an Ed25519 public key") from None
    return raw


def public_jwk(raw: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def thumbprint(raw: bytes) -> str:
    """The RFC 7638 thumbprint of the key's JWK (base64url SHA-256): its key id."""
    canonical = json.dumps(public_jwk(raw), separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


def canonical(members: Mapping[str, Any]) -> bytes:
    return json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def enrollment_bytes(*, tenant: str, subject: str, enrollment_id: str, key_id: str) -> bytes:
    return canonical(
        {
            "purpose": ENROLLMENT_PURPOSE,
            "tenant": tenant,
            "subject": subject,
            "enrollment_id": enrollment_id,
            "key_id": key_id,
        }
    )


def answer_bytes(
    *, tenant: str, subject: str, challenge_id: str, decision: str, number: str | None
) -> bytes:
    return canonical(
        {
            "purpose": ANSWER_PURPOSE,
            "tenant": tenant,
            "subject": subject,
            "challenge_id": challenge_id,
            "decision": decision,
            "number": number,
        }
    )


def check_signature(
    raw_key: bytes, message: bytes, *, signature: str | None, key_id: str | None
) -> str | None:
    """Why ``signature`` over ``message`` is refused for the enrolled key ``raw_key``, or
    ``None`` when it holds. ``key_id`` is the thumbprint the signer says it used: another
    key's is ``unknown_device_key`` (the answer of another device or enrollment)."""
    if signature is None or signature == "":
        return "unsigned"
    if key_id is not None and key_id != thumbprint(raw_key):
        return "unknown_device_key"
    raw_signature = unb64url(signature)
    if raw_signature is None or len(raw_signature) != SIGNATURE_BYTES:
        return "bad_signature"
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_signature, message)
    except InvalidSignature:
        return "bad_signature"
    return None


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of ``key`` (what the enrollment stores)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

"""A software WebAuthn authenticator (ES256, "none" attestation) for tests and the simulator.

Written from the WebAuthn Level 2 spec, on ``cryptography`` and ``cbor2`` only:

* authenticatorData = rpIdHash (32) | flags (1) | signCount (4, big-endian)
  [| attestedCredentialData = aaguid (16) | credentialIdLength (2) | credentialId | COSE key]
  with flags UP 0x01, UV 0x04, BE 0x08, BS 0x10, AT 0x40 (§6.1);
* clientDataJSON = {"type", "challenge" (base64url), "origin", "crossOrigin"} (§5.8.1);
* an assertion signature is ECDSA P-256 / SHA-256 (DER) over
  ``authenticatorData || SHA-256(clientDataJSON)`` (§6.3.3);
* the attestation object is CBOR ``{"fmt": "none", "attStmt": {}, "authData": …}`` (§8.7).

Every knob that a test needs to play an attacker is a keyword argument of :meth:`create`
or :meth:`get`: wrong origin (pass it), wrong RP ID (``rp_id=``), tampered signature
(``tamper_signature=True``), rewound counter (``sign_count=``), no user verification
(``user_verified=False``), a credential the server never saw (``credential_id=``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ES256 = -7
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AuthenticatorRefused(Exception):
    """The authenticator would not act (e.g. it holds an excluded credential)."""


@dataclass
class SoftCredential:
    """One credential on the authenticator: its key pair, RP, user handle and counter."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def cose_public_key(self) -> bytes:
        """The COSE_Key (RFC 9053 §7.1.1, EC2 / P-256 / ES256) as it appears in authData."""
        numbers = self.private_key.public_key().public_numbers()
        key = {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big")}
        key[-3] = numbers.y.to_bytes(32, "big")
        return cbor2.dumps(key)

    @property
    def public_point(self) -> bytes:
        """The raw ``x || y`` coordinates, for at-rest leak checks."""
        numbers = self.private_key.public_key().public_numbers()
        return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


@dataclass
class SoftAuthenticator:
    """A roaming (``cross-platform``, USB) or platform (``internal``) authenticator."""

    aaguid: bytes = bytes(16)
    attachment: str = "cross-platform"
    transports: tuple[str, ...] = ("usb",)
    counter: bool = True
    """``False``: always report 0, like passkeys that keep no signature counter."""
    backup_eligible: bool = False
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    def create(
        self,
        options_json: str | dict[str, Any],
        origin: str,
        *,
        user_verified: bool = True,
        user_present: bool = True,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        ceremony: str = "webauthn.create",
        credential_id: bytes | None = None,
        cose_key: bytes | None = None,
        fmt: str = "none",
        statement: dict[Any, Any] | None = None,
        extra_flags: int = 0,
    ) -> str:
        """``navigator.credentials.create()``: a new ES256 credential, as registration JSON.

        Attacker knobs beyond :meth:`get`'s: ``credential_id`` re-registers a held
        credential (ignoring ``excludeCredentials``); ``cose_key`` puts other bytes where
        the public key goes; ``fmt`` and ``statement`` replace the "none" attestation;
        ``extra_flags`` ORs raw bits into the flags byte.
        """
        options = _load(options_json)
        if not any(p.get("alg") == ES256 for p in options.get("pubKeyCredParams", [])):
            raise AuthenticatorRefused("the relying party does not accept ES256")
        if credential_id is not None:
            credential = self.credentials[credential_id]
        else:
            for excluded in options.get("excludeCredentials", []):
                if unb64url(excluded["id"]) in self.credentials:
                    raise AuthenticatorRefused("this authenticator holds an excluded credential")
            credential = SoftCredential(
                credential_id=secrets.token_bytes(32),
                private_key=ec.generate_private_key(ec.SECP256R1()),
                rp_id=rp_id or options["rp"]["id"],
                user_handle=unb64url(options["user"]["id"]),
            )
            self.credentials[credential.credential_id] = credential
        rp = rp_id or options["rp"]["id"]
        attested = (
            self.aaguid
            + len(credential.credential_id).to_bytes(2, "big")
            + credential.credential_id
            + (cose_key if cose_key is not None else credential.cose_public_key)
        )
        flags = self._flags(user_present, user_verified) | AT | extra_flags
        auth_data = _auth_data(rp, flags, credential.sign_count) + attested
        client_data = _client_data(ceremony, challenge, options, origin)
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement or {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": list(self.transports),
                },
            }
        )

    def get(
        self,
        options_json: str | dict[str, Any],
        origin: str,
        *,
        user_verified: bool = True,
        user_present: bool = True,
        sign_count: int | None = None,
        credential_id: bytes | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        tamper_signature: bool = False,
        ceremony: str = "webauthn.get",
        extra_flags: int = 0,
    ) -> str:
        """``navigator.credentials.get()``: an assertion JSON.

        ``sign_count`` sets the counter to that value (a rewound clone); otherwise the
        counter moves forward by one (or stays 0 without ``counter``). ``credential_id``
        picks a held credential even when the options do not allow it.
        """
        options = _load(options_json)
        credential = self._pick(options, credential_id)
        if sign_count is not None:
            credential.sign_count = sign_count
        elif self.counter:
            credential.sign_count += 1
        rp = rp_id or options.get("rpId") or credential.rp_id
        flags = self._flags(user_present, user_verified) | extra_flags
        auth_data = _auth_data(rp, flags, credential.sign_count)
        client_data = _client_data(ceremony, challenge, options, origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        if tamper_signature:
            signed = bytes([signed[0] ^ 0x01]) + signed[1:]
        signature = credential.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(credential.user_handle),
                },
            }
        )

    def _pick(self, options: dict[str, Any], credential_id: bytes | None) -> SoftCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
        for candidate in allowed or list(self.credentials):
            if candidate in self.credentials:
                return self.credentials[candidate]
        raise AuthenticatorRefused("no credential on this authenticator is allowed")

    def _flags(self, user_present: bool, user_verified: bool) -> int:
        flags = (UP if user_present else 0) | (UV if user_verified else 0)
        return flags | (BE if self.backup_eligible else 0)


def _load(options: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(options) if isinstance(options, str) else options


def _auth_data(rp_id: str, flags: int, sign_count: int) -> bytes:
    rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
    return rp_id_hash + bytes([flags]) + sign_count.to_bytes(4, "big")


def _client_data(
    ceremony: str, challenge: bytes | None, options: dict[str, Any], origin: str
) -> bytes:
    collected = {
        "type": ceremony,
        "challenge": b64url(challenge) if challenge is not None else options["challenge"],
        "origin": origin,
        "crossOrigin": False,
    }
    return json.dumps(collected, separators=(",", ":")).encode()

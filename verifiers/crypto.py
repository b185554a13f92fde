"""Secrets at rest: AES-GCM for what must be read back, keyed hashes for what must not.

* :class:`SecretBox` encrypts TOTP seeds, WebAuthn public keys and phone numbers or
  e-mail addresses. Each ciphertext is bound to its row (associated data), so a value
  copied into another row does not decrypt.
* :meth:`SecretBox.code_hash` stores one-time codes as a salted HMAC under a key derived
  from the master key: a stolen database alone does not let anyone brute-force the
  10⁶ possible codes offline.
* :func:`hash_lookup_secret` / :func:`verify_lookup_secret` store recovery codes with
  scrypt, a salted memory-hard KDF (NIST SP 800-63B §5.1.2.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class SecretKeyError(ValueError):
    """The configured secrets key is missing or malformed."""


class DecryptionError(ValueError):
    """A ciphertext was altered, moved to another row, or made under another key."""


def new_key() -> str:
    """A fresh base64 secrets key (for ``FACTORSTREAM_SECRETS_KEY``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


class SecretBox:
    """AES-256-GCM under one master key; nonces are random per encryption."""

    def __init__(self, key: str | bytes) -> None:
        raw = key if isinstance(key, bytes) else _decode_key(key)
        if len(raw) != KEY_BYTES:
            raise SecretKeyError(f"secrets key must be {KEY_BYTES} bytes, got {len(raw)}")
        self._aead = AESGCM(hashlib.sha256(b"factorstream/aead\x00" + raw).digest())
        self._mac_key = hashlib.sha256(b"factorstream/code-hash\x00" + raw).digest()

    def seal(self, plaintext: bytes, *, row: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, row.encode())

    def open(self, sealed: bytes, *, row: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], row.encode())
        except (InvalidTag, ValueError):
            raise DecryptionError(f"secret of {row} does not decrypt") from None

    def code_hash(self, code: str, salt: bytes) -> bytes:
        """The stored form of a one-time code."""
        return hmac.new(self._mac_key, salt + code.encode(), hashlib.sha256).digest()

    def code_matches(self, code: str, salt: bytes, stored: bytes) -> bool:
        return hmac.compare_digest(self.code_hash(code, salt), stored)


def _decode_key(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
    except ValueError:
        raise SecretKeyError("secrets key is not base64") from None


def hash_lookup_secret(secret: str) -> str:
    """scrypt hash of a recovery code, as ``scrypt$<salt>$<hash>`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return "scrypt${}${}".format(*(base64.b64encode(x).decode() for x in (salt, digest)))


def verify_lookup_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_text, digest_text = stored.split("$")
        salt, digest = base64.b64decode(salt_text), base64.b64decode(digest_text)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(candidate, digest)

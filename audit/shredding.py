"""Crypto-shredding: personal data sealed under per-subject keys that can be destroyed.

* Each (tenant, subject) has a random 256-bit data key; an entry's personal fields are
  sealed together with it (AES-256-GCM, a random 96-bit nonce, the event id and key id
  as associated data, so a ciphertext moved to another entry does not open).
* Data keys are stored wrapped (AES-256-GCM) under the master key, a 32-byte file
  (settings ``ledger.master_key_file``, base64, created on first use with mode 0600);
  the associated data of a wrapped key is its key id, tenant and subject.
* Erasing a subject destroys its wrapped key: every entry keeps its ciphertext (so
  every hash and proof still verifies) but nothing can open it any more. A later event
  of the same subject gets a new key.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit.checkpoints import write_private_file

KEY_BYTES = 32
NONCE_BYTES = 12


class ShreddingError(ValueError):
    """A key file is malformed, or a wrapped key or ciphertext does not open."""


def load_master_key(path: Path, *, create: bool = True) -> bytes:
    """The 32-byte master key stored base64 in ``path``; created there if missing."""
    if not path.exists():
        if not create:
            raise ShreddingError(f"no master key at {path}")
        try:
            write_private_file(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        except FileExistsError:
            pass
    try:
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ShreddingError(f"{path} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ShreddingError(f"{path} must hold {KEY_BYTES} bytes, holds {len(raw)}")
    return raw


def new_key_id() -> str:
    return secrets.token_hex(16)


class KeyWrapper:
    """Wraps and unwraps per-subject data keys under the master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ShreddingError(f"the master key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(master_key)

    def wrap(self, data_key: bytes, *, key_id: str, tenant: str, subject: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _wrap_context(key_id, tenant, subject))

    def unwrap(self, wrapped: bytes, *, key_id: str, tenant: str, subject: str) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_context(key_id, tenant, subject)
            )
        except (InvalidTag, ValueError):
            raise ShreddingError(
                f"data key {key_id} of {tenant}/{subject} does not unwrap (another master key?)"
            ) from None


def _wrap_context(key_id: str, tenant: str, subject: str) -> bytes:
    return f"factorstream-ledger-key\x00{key_id}\x00{tenant}\x00{subject}".encode()


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def seal(data_key: bytes, plaintext: bytes, *, context: bytes) -> bytes:
    """``nonce || AES-GCM(plaintext)`` bound to ``context`` (associated data)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, context)


def open_sealed(data_key: bytes, sealed: bytes, *, context: bytes) -> bytes:
    try:
        return AESGCM(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
    except (InvalidTag, ValueError):
        raise ShreddingError("sealed personal data does not open under its key") from None

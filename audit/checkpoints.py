"""Signed checkpoints: Ed25519 over (ledger id, tree size, root hash, time, key id).

The signed bytes are the UTF-8 text of :func:`statement`, one field a line::

    factorstream-ledger-checkpoint/v1
    <log id>
    <tree size, decimal>
    <root hash, 64 lower-case hex digits>
    <time, UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>
    <key id, 64 lower-case hex digits>

The key id is ``SHA-256`` of the raw 32-byte public key, in hex. The private key is a
PEM file (settings ``ledger.signing_key_file``, created on first use, mode 0600); the
public keys of every key that ever signed stay in the database, so checkpoints signed
before a rotation still verify.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.signing import key_id_of

STATEMENT_HEADER = "factorstream-ledger-checkpoint/v1"
ALGORITHM = "ed25519"


class CheckpointError(ValueError):
    """A checkpoint document or key file is malformed."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of one tree head."""

    log_id: str
    tree_size: int
    root_hash: bytes
    time: datetime
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "time": format_time(self.time),
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Checkpoint:
        """Parse a checkpoint object; :class:`CheckpointError` names the bad field."""
        if value.get("algorithm", ALGORITHM) != ALGORITHM:
            raise CheckpointError(f"algorithm {value.get('algorithm')!r} is not {ALGORITHM}")
        log_id, key_id = value.get("log_id"), value.get("key_id")
        size = value.get("tree_size")
        if not isinstance(log_id, str) or not log_id:
            raise CheckpointError("log_id is missing")
        if not isinstance(key_id, str) or len(key_id) != 64:
            raise CheckpointError("key_id is not a 64-digit hex key id")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CheckpointError("tree_size is not a non-negative integer")
        try:
            root = bytes.fromhex(value["root_hash"])
            signature = base64.b64decode(value["signature"], validate=True)
            time = datetime.fromisoformat(value["time"].replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as error:
            raise CheckpointError(f"root_hash, signature or time is malformed ({error})") from None
        if len(root) != 32:
            raise CheckpointError("root_hash is not a SHA-256 hash")
        if time.tzinfo is None:
            raise CheckpointError("time has no UTC offset")
        return cls(log_id, size, root, time.astimezone(UTC), key_id, signature)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("checkpoint time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def statement(checkpoint: Checkpoint) -> bytes:
    """The bytes the signature covers."""
    return statement_of(
        log_id=checkpoint.log_id,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        time=checkpoint.time,
        key_id=checkpoint.key_id,
    )


def statement_of(
    *, log_id: str, tree_size: int, root_hash: bytes, time: datetime, key_id: str
) -> bytes:
    lines = (STATEMENT_HEADER, log_id, str(tree_size), root_hash.hex(), format_time(time), key_id)
    return ("\n".join(lines) + "\n").encode()


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(
    key: Ed25519PrivateKey, *, log_id: str, tree_size: int, root_hash: bytes, time: datetime
) -> Checkpoint:
    key_id = key_id_of(key.public_key())
    message = statement_of(
        log_id=log_id, tree_size=tree_size, root_hash=root_hash, time=time, key_id=key_id
    )
    return Checkpoint(log_id, tree_size, root_hash, time.astimezone(UTC), key_id, key.sign(message))


def write_private_file(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 (never readable by others, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def load_signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (PEM, PKCS#8); created there if missing."""
    if not path.exists():
        if not create:
            raise CheckpointError(f"no signing key at {path}")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            write_private_file(path, pem)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            return key
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CheckpointError(f"{path} holds a key that is not Ed25519")
    return loaded


def rotate_signing_key(path: Path) -> Ed25519PrivateKey:
    """Replace the key in ``path`` with a new one; the old file is kept as ``<name>.<id>``.

    Register the new public key in the ledger (``Ledger.register_key``) before signing;
    the old public key is already in the database.
    """
    old = load_signing_key(path, create=False)
    path.rename(path.with_name(f"{path.name}.{key_id_of(old.public_key())[:16]}"))
    return load_signing_key(path, create=True)

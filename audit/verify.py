"""Offline verification of proofs and checkpoints: needs only their JSON and a public key.

Nothing here reads the ledger database or shares code with the tree builder
(:mod:`audit.merkle`): the algorithms are RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
(consistency), and the checkpoint signature is checked over the statement of
:func:`audit.checkpoints.statement`. Every refusal is a :class:`ProofRefused` whose
message says what did not match.

Proof files (``factorstream audit prove`` / ``consistency``) are JSON objects:

* inclusion: ``{"kind": "inclusion", "event_id", "leaf_index", "leaf_hash", "entry"
  (base64 canonical entry bytes), "path": [hex…], "checkpoint": {…}}``; the event id and
  index must be the ones inside the entry, and what the verifier reports about the event
  is read from the entry (a field no proof covers refuses the file)
* consistency: ``{"kind": "consistency", "path": [hex…], "old": {checkpoint},
  "new": {checkpoint}}``

A checkpoint is ``{"log_id", "tree_size", "root_hash" (hex), "time" (RFC 3339),
"key_id", "algorithm": "ed25519", "signature" (base64)}``. The verifier brings the
public keys it trusts (PEM); the one whose id (SHA-256 of the raw key) the checkpoint
names must be among them. A key carried inside the file would prove nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import decode_entry
from audit.checkpoints import Checkpoint, CheckpointError, statement
from schemas.signing import key_id_of


class ProofRefused(Exception):
    """A proof, checkpoint or proof file did not verify; the message says why."""


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _hash(b"\x01" + left + right)


def verify_inclusion(*, leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: ``leaf`` (a leaf hash) is at ``index`` of the tree with ``root``."""
    if not 0 <= index < size:
        raise ProofRefused(f"leaf index {index} is outside a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofRefused("the inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofRefused("the inclusion path is shorter than the tree is deep")
    if r != root:
        raise ProofRefused("the inclusion path does not lead to the checkpoint's root hash")


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: list[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: the tree of ``new_size`` extends the tree of ``old_size``."""
    if not 0 < old_size <= new_size:
        raise ProofRefused(f"no consistency between sizes {old_size} and {new_size}")
    if old_size == new_size:
        if path:
            raise ProofRefused("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofRefused("two checkpoints of the same size have different roots")
        return
    if not path:
        raise ProofRefused("the consistency proof is empty")
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofRefused("the consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofRefused("the consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise ProofRefused("the consistency proof does not reproduce the old root hash")
    if sr != new_root:
        raise ProofRefused("the consistency proof does not reproduce the new root hash")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise ProofRefused(f"not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ProofRefused("the public key is not an Ed25519 key")
    return key


def verify_checkpoint(checkpoint: Checkpoint, key: Ed25519PublicKey) -> None:
    """The checkpoint is signed by ``key`` and names that key's id."""
    if key_id_of(key) != checkpoint.key_id:
        raise ProofRefused(
            f"checkpoint of size {checkpoint.tree_size} names key {checkpoint.key_id}, "
            f"but the public key given has id {key_id_of(key)}"
        )
    try:
        key.verify(checkpoint.signature, statement(checkpoint))
    except InvalidSignature:
        raise ProofRefused(
            f"the signature of the checkpoint of size {checkpoint.tree_size} is invalid"
        ) from None


def checkpoints_of(text: str | bytes) -> list[Checkpoint]:
    """Checkpoints kept elsewhere: a checkpoint object, an ``audit.checkpoint.signed``
    event (as published to the checkpoints topic), a JSON list of either, or JSON Lines."""
    try:
        values = [json.loads(text)]
    except ValueError:
        try:
            values = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise ProofRefused(f"not JSON or JSON Lines ({error})") from None
    if len(values) == 1 and isinstance(values[0], list):
        values = values[0]
    found = []
    for value in values:
        if isinstance(value, dict) and value.get("type") == "audit.checkpoint.signed":
            value = {**(value.get("data") or {}), "time": value.get("time")}
        if not isinstance(value, dict):
            raise ProofRefused("a checkpoint must be a JSON object")
        try:
            found.append(Checkpoint.from_json(value))
        except CheckpointError as error:
            raise ProofRefused(f"not a checkpoint: {error}") from None
    return found


@dataclass(frozen=True)
class Verified:
    """What a proof file established."""

    kind: str
    summary: str


def trusted_keys(pems: Iterable[bytes]) -> dict[str, Ed25519PublicKey]:
    """PEM public keys by key id (:class:`ProofRefused` for one that is not Ed25519 PEM)."""
    return {key_id_of(key): key for key in map(load_public_key, pems)}


def read_trusted_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The keys of PEM files, by key id (``audit verify --public-key``, the dashboard's
    pinned keys); :class:`ProofRefused` naming a file that cannot be read or holds no
    Ed25519 public key."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            keys |= trusted_keys([path.read_bytes()])
        except OSError as error:
            raise ProofRefused(f"{path}: cannot read it ({error.strerror})") from None
        except ProofRefused as error:
            raise ProofRefused(f"{path}: {error}") from None
    return keys


def check_proof_document(text: str | bytes, *, public_keys: Sequence[bytes]) -> Verified:
    """Verify a proof file offline against trusted PEM keys; raises :class:`ProofRefused`."""
    keys = trusted_keys(public_keys)
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProofRefused(f"the proof file is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ProofRefused("the proof file is not a JSON object")
    kind = document.get("kind")
    if kind == "inclusion":
        return _check_inclusion(document, keys)
    if kind == "consistency":
        return _check_consistency(document, keys)
    raise ProofRefused(f"unknown proof kind {kind!r} (expected inclusion or consistency)")


def _checkpoint(value: Any, keys: Mapping[str, Ed25519PublicKey], label: str) -> Checkpoint:
    if not isinstance(value, dict):
        raise ProofRefused(f"the proof file has no {label} checkpoint object")
    try:
        checkpoint = Checkpoint.from_json(value)
    except CheckpointError as error:
        raise ProofRefused(f"{label} checkpoint: {error}") from None
    key = keys.get(checkpoint.key_id)
    if key is None:
        raise ProofRefused(
            f"the {label} checkpoint is signed by key {checkpoint.key_id}, which is not among "
            f"the public keys given ({', '.join(keys) or 'none'})"
        )
    verify_checkpoint(checkpoint, key)
    return checkpoint


def _hashes(value: Any, label: str) -> list[bytes]:
    if not isinstance(value, list):
        raise ProofRefused(f"{label} is not a list of hashes")
    return [_hex_hash(item, f"{label}[{i}]") for i, item in enumerate(value)]


def _hex_hash(value: Any, label: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ProofRefused(f"{label} is not a 64-digit hex SHA-256 hash")
    return raw


def _integer(value: Any, label: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofRefused(f"{label} is not a non-negative integer")
    return value


INCLUSION_FIELDS = frozenset(
    {"kind", "event_id", "leaf_index", "leaf_hash", "entry", "path", "checkpoint"}
)
CONSISTENCY_FIELDS = frozenset({"kind", "old", "new", "path"})


def _only(document: Mapping[str, Any], fields: frozenset[str]) -> None:
    """A field the proof cannot bind to the signed root is a claim nobody checked: refused
    rather than shown beside what was proven."""
    extra = sorted(set(document) - fields)
    if extra:
        raise ProofRefused(f"the proof file has fields no proof covers: {', '.join(extra)}")


def _check_inclusion(document: dict[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> Verified:
    """Every claim is bound to the signed root: the entry bytes hash to the leaf, the leaf
    and its index lead up the path to the checkpoint's root, and the event id and position
    the file names must be the ones inside those entry bytes; what is reported about the
    event is read from the entry, never from the file's own fields."""
    _only(document, INCLUSION_FIELDS)
    checkpoint = _checkpoint(document.get("checkpoint"), keys, "the")
    index = _integer(document.get("leaf_index"), "leaf_index")
    leaf = _hex_hash(document.get("leaf_hash"), "leaf_hash")
    claimed = document.get("event_id")
    if not isinstance(claimed, str) or not claimed:
        raise ProofRefused("event_id is missing: a proof names the event it proves")
    encoded = document.get("entry")
    if not isinstance(encoded, str):
        raise ProofRefused("entry is missing: the entry bytes bind the event to the leaf")
    try:
        entry = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProofRefused("entry is not base64") from None
    if _hash(b"\x00" + entry) != leaf:
        raise ProofRefused("the entry bytes do not hash to leaf_hash")
    path = _hashes(document.get("path"), "path")
    verify_inclusion(
        leaf=leaf, index=index, size=checkpoint.tree_size, path=path, root=checkpoint.root_hash
    )
    try:
        stored = decode_entry(entry)
    except msgspec.ValidationError as error:
        raise ProofRefused(f"the entry is not a ledger entry ({error})") from None
    event = stored.event
    if stored.seq != index:
        raise ProofRefused(f"leaf_index {index} is not the entry's own position ({stored.seq})")
    if event.get("id") != claimed:
        raise ProofRefused(
            f"event_id {claimed} is not the event in the entry ({event.get('id')}): the proof "
            "is of another event"
        )
    what = ", ".join(
        f"{name} {event[name]}" for name in ("type", "tenant", "subject", "time") if name in event
    )
    sealed = stored.sealed
    withheld = (
        f"; its personal fields ({', '.join(sealed.paths)}) are in the entry only as "
        f"ciphertext under data key {sealed.key}: this proof does not show their values (an "
        "erasure destroys that key, and the proof stays valid)"
        if sealed is not None
        else ""
    )
    return Verified(
        "inclusion",
        f"entry {index}, event {claimed} ({what}, recorded {stored.recorded_at}), is in the "
        f"ledger {checkpoint.log_id} of {checkpoint.tree_size} entries signed at "
        f"{checkpoint.time.isoformat()} by key {checkpoint.key_id[:16]}…{withheld}",
    )


def _check_consistency(document: dict[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> Verified:
    _only(document, CONSISTENCY_FIELDS)
    old = _checkpoint(document.get("old"), keys, "old")
    new = _checkpoint(document.get("new"), keys, "new")
    if old.log_id != new.log_id:
        raise ProofRefused(f"the checkpoints are of different ledgers: {old.log_id}, {new.log_id}")
    verify_consistency(
        old_size=old.tree_size,
        new_size=new.tree_size,
        old_root=old.root_hash,
        new_root=new.root_hash,
        path=_hashes(document.get("path"), "path"),
    )
    return Verified(
        "consistency",
        f"the ledger {new.log_id} of {new.tree_size} entries extends its first "
        f"{old.tree_size} entries unchanged",
    )

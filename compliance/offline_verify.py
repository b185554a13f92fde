#!/usr/bin/env python3
"""Verify a factorstream evidence pack offline: ``python verify.py [PACK_DIR]``.

Needs only the Python standard library and ``cryptography`` (``pip install cryptography``).
It checks, and exits non-zero naming the first thing that does not hold:

1. every file's SHA-256 against ``manifest.json``, and that no file is missing or added;
2. every checkpoint in ``checkpoints.json``: its Ed25519 signature over the ledger's
   checkpoint statement, by a trusted key (``keys/*.pem``, or only the keys given with
   ``--public-key``: compare the key ids printed with those your organisation pinned);
3. every evidence row of every control (``controls.json`` → ``evidence/*.csv``): its
   inclusion proof (RFC 9162 §2.1.3.2) leads from the entry bytes to the root of one of
   those checkpoints, and the event the row names (id, position, type, tenant, subject,
   time) is the event inside the proven entry; a row's related event (the MFA step of a
   sign-in) is proven the same way and must be of the same login transaction;
4. the counts each control states are the rows the pack holds, and no proof is unused.

The bundle's digest, SHA-256 of ``manifest.json``, is recorded in the ledger as an
``audit.evidence.issued`` event when the pack is issued: ask the ledger's operator for
that event's inclusion proof to show that this is the pack that was handed out.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

STATEMENT_HEADER = "factorstream-ledger-checkpoint/v1"
MFA_SUCCESS_TYPES = ("mfa.verification.succeeded", "mfa.push.approved", "mfa.recovery.succeeded")
MFA_STEP_TYPES = (
    "mfa.challenge.issued", "mfa.challenge.sent", "mfa.challenge.delivery_failed",
    "mfa.verification.failed", "mfa.push.rejected", "mfa.push.expired",
    "mfa.push.reported_fraud", "mfa.recovery.failed",
)  # fmt: skip
COLUMNS = (
    "control", "finding", "event_id", "sequence", "time", "type", "tenant", "subject",
    "subject_erased", "detail", "related_event_id", "proof", "related_proof",
)  # fmt: skip


class PackRefused(Exception):
    """Something in the pack does not verify; the message says what."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root the path leads to from ``leaf`` at ``index``."""
    if not 0 <= index < size:
        raise PackRefused(f"leaf index {index} is outside a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise PackRefused("an inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise PackRefused("an inclusion path is shorter than the tree is deep")
    return r


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise PackRefused(f"{path.name} is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def statement(checkpoint: dict[str, Any]) -> bytes:
    lines = (
        STATEMENT_HEADER,
        checkpoint["log_id"],
        str(checkpoint["tree_size"]),
        checkpoint["root_hash"],
        checkpoint["time"],
        checkpoint["key_id"],
    )
    return ("\n".join(lines) + "\n").encode()


def check_checkpoint(checkpoint: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> None:
    size = checkpoint.get("tree_size")
    if checkpoint.get("algorithm", "ed25519") != "ed25519":
        raise PackRefused(f"checkpoint {size}: algorithm is not ed25519")
    key = keys.get(str(checkpoint.get("key_id")))
    if key is None:
        raise PackRefused(
            f"checkpoint {size} is signed by key {checkpoint.get('key_id')}, not a trusted key"
        )
    try:
        key.verify(base64.b64decode(checkpoint["signature"], validate=True), statement(checkpoint))
    except (InvalidSignature, ValueError, KeyError):
        raise PackRefused(f"the signature of checkpoint {size} is invalid") from None


def check_manifest(pack: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((pack / "manifest.json").read_text("utf-8"))
    listed: dict[str, str] = manifest["files"]
    present = {
        p.relative_to(pack).as_posix()
        for p in pack.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } - {"manifest.json"}
    for name in sorted(present - set(listed)):
        raise PackRefused(f"{name} is in the pack but not in the manifest")
    for name, digest in sorted(listed.items()):
        path = _inside(pack, name)
        if not path.is_file():
            raise PackRefused(f"{name} is in the manifest but missing from the pack")
        if sha256_file(path) != digest:
            raise PackRefused(f"{name} was changed: its SHA-256 is not the manifest's")
    return manifest


def _inside(pack: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise PackRefused(f"{name!r} points outside the pack")
    return pack.joinpath(*relative.parts)


def check_proof(
    pack: Path, name: str, event_id: str, checkpoints: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The entry a proof file proves, after checking it leads to a pack checkpoint."""
    proof = json.loads(_inside(pack, name).read_text("utf-8"))
    if proof.get("kind") != "inclusion" or proof.get("event_id") != event_id:
        raise PackRefused(f"{name} is not the inclusion proof of event {event_id}")
    checkpoint = proof.get("checkpoint") or {}
    signed = checkpoints.get(int(checkpoint.get("tree_size", -1)))
    fields = ("log_id", "tree_size", "root_hash", "time", "key_id", "signature")
    if signed is None or any(signed.get(f) != checkpoint.get(f) for f in fields):
        raise PackRefused(f"{name} is against a checkpoint that is not among the pack's")
    entry = base64.b64decode(proof["entry"], validate=True)
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    if leaf.hex() != proof.get("leaf_hash"):
        raise PackRefused(f"{name}: the entry bytes do not hash to its leaf_hash")
    path = [bytes.fromhex(node) for node in proof["path"]]
    root = root_from_inclusion(leaf, int(proof["leaf_index"]), int(signed["tree_size"]), path)
    if root.hex() != signed["root_hash"]:
        raise PackRefused(f"{name}: the inclusion path does not lead to the checkpoint's root")
    stored = json.loads(entry)
    if not isinstance(stored, dict) or not isinstance(stored.get("event"), dict):
        raise PackRefused(f"{name}: the proven entry is not a ledger entry")
    if stored.get("seq") != proof["leaf_index"] or stored["event"].get("id") != event_id:
        raise PackRefused(f"{name}: the proven entry is not event {event_id} at its position")
    return stored


def check_rows(
    pack: Path, control: dict[str, Any], checkpoints: dict[int, dict[str, Any]], used: set[str]
) -> int:
    name = control["control"]
    with _inside(pack, control["evidence"]).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != control["rows"]:
        raise PackRefused(
            f"{name}: {len(rows)} evidence rows, but the control states {control['rows']}"
        )
    exceptions = sum(row["finding"] == "exception" for row in rows)
    if exceptions != control["exceptions"]:
        raise PackRefused(
            f"{name}: {exceptions} exceptions, but the control states {control['exceptions']}"
        )
    for number, row in enumerate(rows, start=2):
        where = f"{control['evidence']} line {number}"
        if row["control"] != name:
            raise PackRefused(f"{where} belongs to control {row['control']}, not {name}")
        entry = check_proof(pack, row["proof"], row["event_id"], checkpoints)
        used.add(row["proof"])
        event = entry["event"]
        claims = {
            "sequence": str(entry["seq"]),
            "time": event.get("time"),
            "type": event.get("type"),
            "tenant": event.get("tenant"),
            "subject": event.get("subject"),
        }
        for column, proven in claims.items():
            if row[column] != proven:
                raise PackRefused(f"{where}: {column} {row[column]!r} is not the proven {proven!r}")
        if event.get("type") == "auth.login.attempted":  # a sign-in: ok means a proven MFA step
            if (event.get("data") or {}).get("outcome") != "success":
                raise PackRefused(f"{where}: the proven event is not a successful sign-in")
            if (row["finding"] in ("ok", "refused")) != bool(row["related_event_id"]):
                raise PackRefused(
                    f"{where}: a sign-in is ok or refused only with a proven MFA step"
                )
        if row["related_event_id"]:
            related = check_proof(pack, row["related_proof"], row["related_event_id"], checkpoints)
            used.add(row["related_proof"])
            other = related["event"]
            same = all(other.get(f) == event.get(f) for f in ("tenant", "subject", "correlationid"))
            wanted = MFA_STEP_TYPES if row["finding"] == "refused" else MFA_SUCCESS_TYPES
            if other.get("type") not in wanted or not same:
                raise PackRefused(
                    f"{where}: the related event is not an MFA "
                    f"{'step' if row['finding'] == 'refused' else 'success'} of this login"
                )
    return len(rows)


def verify(pack: Path, pinned: list[Path]) -> list[str]:
    said = []
    manifest = check_manifest(pack)
    said.append(f"manifest: {len(manifest['files'])} files, every SHA-256 matches")
    keys = load_keys(pinned or sorted((pack / "keys").glob("*.pem")))
    said.append(
        f"trusted keys ({'pinned' if pinned else 'from the pack: compare with your pinned ids'}): "
        + ", ".join(sorted(keys))
    )
    checkpoints: dict[int, dict[str, Any]] = {}
    for checkpoint in json.loads((pack / "checkpoints.json").read_text("utf-8")):
        check_checkpoint(checkpoint, keys)
        if checkpoint.get("log_id") != manifest["log_id"]:
            raise PackRefused(f"checkpoint {checkpoint.get('tree_size')} is of another ledger")
        checkpoints[checkpoint["tree_size"]] = checkpoint
    said.append(f"checkpoints: {len(checkpoints)} signatures valid")
    used: set[str] = set()
    for control in json.loads((pack / "controls.json").read_text("utf-8")):
        count = check_rows(pack, control, checkpoints, used)
        said.append(
            f"{control['control']}: {control['status']}; {count} rows proven, "
            f"{control['exceptions']} exceptions"
        )
    proofs = {p for p in manifest["files"] if p.startswith("proofs/")}
    for name in sorted(proofs - used):
        raise PackRefused(f"{name} proves no evidence row (a row was removed?)")
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a factorstream evidence pack offline.")
    parser.add_argument("pack", nargs="?", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument(
        "--public-key", action="append", type=Path, default=[],
        help="trust only this PEM public key (repeatable); default: the pack's keys/",
    )  # fmt: skip
    options = parser.parse_args(argv)
    try:
        for line in verify(options.pack, options.public_key):
            print(f"ok  {line}")
    except (PackRefused, OSError, ValueError, KeyError, TypeError) as error:
        print(f"FAILED  {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("the evidence pack verifies")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The canonical encoding of a ledger entry: the bytes each Merkle leaf hashes.

:func:`encode_entry` makes an entry's bytes: one JSON object (``event``, ``prev``,
``recorded_at``, ``sealed``, ``seq``, ``v``) encoded with every object's keys sorted by
code point and no insignificant whitespace (:func:`encode`). The event's personal-data
fields (:func:`split_personal`) are removed before hashing and sealed per subject
(AES-256-GCM, associated data :func:`sealed_context`): an erasure destroys the key while
every hash and proof stays valid. ``seq`` and ``prev`` make each entry name its own
position and predecessor. The format is a contract with every verifier, ours or an
auditor's: changing it changes every hash. The entry in full:
docs/auditors.md#what-each-leaf-hashes-the-canonical-entry.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from schemas import Event
from schemas.registry import PathTree, personal_tree

VERSION = 1
GENESIS = bytes(32)


class EntryHead(msgspec.Struct, frozen=True):
    """The fields a verifier reads of every entry (the rest is skipped while decoding)."""

    seq: int
    prev: str
    event: EventHead
    v: int


class EventHead(msgspec.Struct, frozen=True):
    id: str
    type: str
    tenant: str
    subject: str


class Sealed(msgspec.Struct, frozen=True):
    ct: str
    key: str
    paths: list[str]


class StoredEntry(msgspec.Struct, frozen=True):
    """A whole entry as decoded back from its bytes."""

    seq: int
    prev: str
    recorded_at: str
    event: dict[str, Any]
    v: int
    sealed: Sealed | None = None


_head_decoder = msgspec.json.Decoder(EntryHead)
_entry_decoder = msgspec.json.Decoder(StoredEntry)


def encode(value: Any) -> bytes:
    """Canonical JSON: sorted keys, compact."""
    return msgspec.json.encode(value, order="sorted")


def split_personal(event: Event) -> tuple[Event, dict[str, Any]]:
    """The event without its personal fields, and those fields as ``{dotted path: value}``.

    A personal field is set to ``None``: left out of the encoding where that is its
    default, ``null`` where the schema requires a value (e.g. ``ip.block.*``'s ``ip``).
    """
    tree = personal_tree(event.type)
    if not tree:
        return event, {}
    taken: dict[str, Any] = {}
    data = _redact(event.data, tree, "data.", taken)
    if not taken:
        return event, taken
    return msgspec.structs.replace(event, data=data), taken


def _redact(node: Any, tree: PathTree, prefix: str, taken: dict[str, Any]) -> Any:
    changes: dict[str, Any] = {}
    for name, below in tree.items():
        value = getattr(node, name, None)
        if value is None:
            continue
        if below is None:
            taken[prefix + name] = value
            changes[name] = None
        else:
            before = len(taken)
            child = _redact(value, below, f"{prefix}{name}.", taken)
            if len(taken) > before:
                changes[name] = child
    return msgspec.structs.replace(node, **changes) if changes else node


def put_back(event: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Set each dotted ``path`` of ``values`` in ``event`` (in place)."""
    for path, value in values.items():
        parts = path.split(".")
        parent = event
        for part in parts[:-1]:
            parent = parent.setdefault(part, {})
        parent[parts[-1]] = value


Sealer = Callable[[bytes, bytes], bytes]
"""``seal(plaintext, context)`` under one subject's data key."""


def encode_entry(
    event: Event,
    *,
    seq: int,
    prev: bytes,
    recorded_at: str,
    key_id: str | None,
    seal: Sealer | None,
    personal: dict[str, Any],
) -> bytes:
    """The canonical bytes of one entry.

    ``event`` has had its ``personal`` fields taken (:func:`split_personal`);
    ``recorded_at`` is formatted by :func:`audit.checkpoints.format_time`.
    """
    entry: dict[str, Any] = {
        "event": event,
        "prev": prev.hex(),
        "recorded_at": recorded_at,
        "seq": seq,
        "v": VERSION,
    }
    if personal:
        if seal is None or key_id is None:
            raise ValueError("personal data present but no data key to seal it")
        context = sealed_context(event.id, key_id)
        ciphertext = seal(encode(personal), context)
        entry["sealed"] = {
            "ct": base64.b64encode(ciphertext).decode(),
            "key": key_id,
            "paths": sorted(personal),
        }
    return encode(entry)


def decode_head(entry: bytes) -> EntryHead:
    return _head_decoder.decode(entry)


def decode_entry(entry: bytes) -> StoredEntry:
    return _entry_decoder.decode(entry)


def sealed_context(event_id: str, key_id: str) -> bytes:
    return f"{event_id}\x00{key_id}".encode()

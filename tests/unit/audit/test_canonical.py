"""The canonical entry encoding is what ``audit.canonical`` documents, for every event type."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit import canonical
from audit.checkpoints import format_time
from audit.merkle import Frontier, leaf_hash
from schemas.registry import BY_NAME, personal_paths
from tests.factories import PAYLOADS, T0, sample_event

KEY = AESGCM(bytes(range(32)))


def _seal(plaintext: bytes, context: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + KEY.encrypt(nonce, plaintext, context)


def _at(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


@pytest.mark.parametrize("type_name", sorted(PAYLOADS))
def test_entries_are_sorted_compact_json_with_personal_data_sealed(type_name: str) -> None:
    event = sample_event(type_name)
    redacted, personal = canonical.split_personal(event)
    entry = canonical.encode_entry(
        redacted,
        seq=7,
        prev=b"\x01" * 32,
        recorded_at=format_time(T0),
        key_id="k" * 32 if personal else None,
        seal=_seal if personal else None,
        personal=personal,
    )
    document = json.loads(entry)
    # the documented form: keys sorted at every level, no whitespace, UTF-8
    canonical_text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_text.encode() == entry
    assert (document["seq"], document["prev"], document["v"]) == (7, "01" * 32, 1)
    assert document["recorded_at"] == "2026-11-02T09:30:00.000000Z"

    original = msgspec.to_builtins(event)
    present = {p for p in personal_paths(BY_NAME[type_name]) if _at(original, p) is not None}
    assert set(personal) == present
    for path in present:  # removed (or null where the schema requires the field)
        assert _at(document["event"], path) is None
    if present:
        sealed = document["sealed"]
        assert sealed["paths"] == sorted(present) and sealed["key"] == "k" * 32
        raw = base64.b64decode(sealed["ct"])
        context = canonical.sealed_context(event.id, "k" * 32)
        opened = json.loads(KEY.decrypt(raw[:12], raw[12:], context))
        assert opened == {path: _at(original, path) for path in present}
        canonical.put_back(document["event"], opened)
        assert document["event"] == original  # nothing else was changed
    else:
        assert "sealed" not in document and document["event"] == original
    head = canonical.decode_head(entry)
    assert (head.seq, head.event.id, head.event.type) == (7, event.id, type_name)


def test_the_frontier_round_trips_through_the_head_row() -> None:
    frontier = Frontier()
    for i in range(13):
        frontier.append(leaf_hash(bytes([i])))
    copy = Frontier.decode(13, frontier.encode())
    assert copy.root() == frontier.root() and copy.levels() == [3, 2, 0]
    with pytest.raises(ValueError, match="3 hashes"):
        Frontier.decode(13, frontier.encode()[:-1])

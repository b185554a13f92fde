"""A batch of events as ledger rows: pure, given the tree head and the subjects' keys.

Each event gets the next leaf index, its personal fields sealed under its subject's data
key, its canonical bytes (:mod:`audit.canonical`) and leaf hash; the frontier advances
and hands back the interior nodes to store. Tree heads where a checkpoint falls due by
count (every ``checkpoint_every`` entries) are collected for the caller to sign.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit import canonical
from audit.checkpoints import format_time
from audit.merkle import STORED_MIN_LEVEL, Frontier, leaf_hash
from audit.shredding import NONCE_BYTES
from schemas import Event


@dataclass
class Rows:
    entries: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    due: list[tuple[int, bytes]] = field(default_factory=list)
    """(tree size, root hash) of each checkpoint due by count."""


def build_rows(
    batch: Sequence[tuple[Event, Event, dict[str, Any]]],
    *,
    frontier: Frontier,
    prev: bytes,
    keys: Mapping[str, tuple[str, AESGCM]],
    now: datetime,
    checkpoint_every: int,
    checkpoint_size: int,
) -> tuple[Rows, bytes]:
    """Rows of ``batch`` (event, event without personal data, personal data) in order.

    ``frontier`` is advanced in place; returns the rows and the last leaf hash.
    """
    rows, recorded_at = Rows(), format_time(now)
    for event, redacted, values in batch:
        seq = frontier.size
        key_id, cipher = keys.get(event.partitionkey, (None, None))
        entry = canonical.encode_entry(
            redacted,
            seq=seq,
            prev=prev,
            recorded_at=recorded_at,
            key_id=key_id,
            seal=_sealer(cipher) if cipher is not None else None,
            personal=values,
        )
        prev = leaf_hash(entry)
        rows.entries.append(
            {
                "seq": seq,
                "event_id": event.id,
                "tenant": event.tenant,
                "subject": event.subject,
                "event_type": event.type,
                "event_time": event.time,
                "recorded_at": now,
                "entry": entry,
                "leaf_hash": prev,
            }
        )
        for level, _index, node in frontier.append(prev):
            if level >= STORED_MIN_LEVEL:
                rows.nodes.append({"leaf": seq, "level": level, "hash": node})
        if frontier.size - checkpoint_size >= checkpoint_every:
            rows.due.append((frontier.size, frontier.root()))
            checkpoint_size = frontier.size
    return rows, prev


def _sealer(cipher: AESGCM) -> canonical.Sealer:
    def seal(plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + cipher.encrypt(nonce, plaintext, context)

    return seal

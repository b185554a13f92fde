"""Proof documents built from the database: inclusion and consistency, with checkpoints.

The JSON shapes are those :mod:`audit.verify` checks offline. Node reads go through
:func:`node_reader`: level 0 is an entry's leaf hash, higher levels are stored nodes.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import merkle
from audit.checkpoints import Checkpoint, public_pem
from audit.tables import checkpoints, entries, head, nodes, signing_keys


class ProofUnavailable(LookupError):
    """The ledger cannot give the proof asked for; the message says why."""


def node_reader(connection: sa.Connection) -> Callable[[int, int], bytes]:
    """Perfect subtree hashes: stored nodes, or (below the stored levels) from leaf hashes."""
    leaves = (
        sa.select(entries.c.leaf_hash)
        .where(entries.c.seq >= sa.bindparam("first"), entries.c.seq <= sa.bindparam("last"))
        .order_by(entries.c.seq)
    )
    node = sa.select(nodes.c.hash).where(
        nodes.c.leaf == sa.bindparam("leaf"), nodes.c.level == sa.bindparam("level")
    )

    def read(level: int, index: int) -> bytes:
        first, last = index << level, ((index + 1) << level) - 1
        if level < merkle.STORED_MIN_LEVEL:
            found = [bytes(h) for h in connection.scalars(leaves, {"first": first, "last": last})]
            if len(found) != 1 << level:
                raise ProofUnavailable(f"entries {first}..{last} are not all in the ledger")
            return merkle.perfect_root(found)
        stored = connection.scalar(node, {"leaf": last, "level": level})
        if stored is None:
            raise ProofUnavailable(f"the tree node over entries {first}..{last} is missing")
        return bytes(stored)

    return read


def load_checkpoints(
    connection: sa.Connection,
    *,
    unpublished: bool = False,
    sizes: Sequence[int] | None = None,
    newest: int | None = None,
) -> list[Checkpoint]:
    """Checkpoints by tree size: all, the unpublished, those of ``sizes``, or the ``newest`` n."""
    log_id = connection.scalar(sa.select(head.c.log_id)) or ""
    query = sa.select(checkpoints).order_by(checkpoints.c.tree_size)
    if unpublished:
        query = query.where(checkpoints.c.published_at.is_(None))
    if sizes is not None:
        query = query.where(checkpoints.c.tree_size.in_(list(sizes)))
    if newest is not None:
        query = query.order_by(None).order_by(checkpoints.c.tree_size.desc()).limit(newest)
    found = [
        Checkpoint(
            log_id,
            int(row.tree_size),
            bytes(row.root_hash),
            row.signed_at,
            row.key_id,
            bytes(row.signature),
        )
        for row in connection.execute(query)
    ]
    return sorted(found, key=lambda c: c.tree_size)


def _newest_sizes(connection: sa.Connection) -> str:
    return ", ".join(str(c.tree_size) for c in load_checkpoints(connection, newest=5)) or "none"


def load_public_keys(connection: sa.Connection) -> dict[str, Ed25519PublicKey]:
    return {
        row.key_id: Ed25519PublicKey.from_public_bytes(bytes(row.public_key))
        for row in connection.execute(sa.select(signing_keys))
    }


def _checkpoint_json(checkpoint: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    document = checkpoint.to_json()
    key = keys.get(checkpoint.key_id)
    if key is not None:  # informative only: verifiers bring the keys they trust
        document["public_key"] = public_pem(key).decode()
    return document


def _checkpoint(connection: sa.Connection, size: int | None, *, covering: int) -> Checkpoint:
    if size is not None:
        for checkpoint in load_checkpoints(connection, sizes=[size]):
            if size <= covering:
                raise ProofUnavailable(
                    f"the checkpoint of size {size} was signed before entry {covering} was appended"
                )
            return checkpoint
        sizes = _newest_sizes(connection)
        raise ProofUnavailable(f"no checkpoint of size {size} (latest sizes: {sizes})")
    known = load_checkpoints(connection, newest=1)
    if not known or known[-1].tree_size <= covering:
        raise ProofUnavailable(
            f"entry {covering} is not yet covered by a signed checkpoint "
            "(one is signed every ledger.checkpoint_every entries or "
            "ledger.checkpoint_interval_s seconds; `factorstream audit checkpoint` signs now)"
        )
    return known[-1]


def inclusion_document(
    connection: sa.Connection, event_id: str, size: int | None
) -> dict[str, Any]:
    row = _entry(connection, event_id)
    checkpoint = _checkpoint(connection, size, covering=int(row.seq))
    return _inclusion(
        row, event_id, checkpoint, node_reader(connection), load_public_keys(connection)
    )


def inclusion_documents(
    connection: sa.Connection, event_ids: Iterable[str], size: int
) -> Iterator[dict[str, Any]]:
    """Inclusion proofs of many events against the checkpoint of ``size`` (the same
    documents as :func:`inclusion_document`), reading each shared tree node once."""
    checkpoint = _checkpoint(connection, size, covering=-1)
    keys = load_public_keys(connection)
    read = functools.cache(node_reader(connection))
    for event_id in event_ids:
        row = _entry(connection, event_id)
        if int(row.seq) >= checkpoint.tree_size:
            raise ProofUnavailable(
                f"the checkpoint of size {size} was signed before entry {row.seq} was appended"
            )
        yield _inclusion(row, event_id, checkpoint, read, keys)


def _entry(connection: sa.Connection, event_id: str) -> Any:
    row = connection.execute(
        sa.select(entries.c.seq, entries.c.entry, entries.c.leaf_hash).where(
            entries.c.event_id == event_id
        )
    ).first()
    if row is None:
        raise ProofUnavailable(f"event {event_id} is not in the ledger")
    return row


def _inclusion(
    row: Any,
    event_id: str,
    checkpoint: Checkpoint,
    read: Callable[[int, int], bytes],
    keys: dict[str, Ed25519PublicKey],
) -> dict[str, Any]:
    path = merkle.inclusion_path(read, int(row.seq), checkpoint.tree_size)
    return {
        "kind": "inclusion",
        "event_id": event_id,
        "leaf_index": int(row.seq),
        "leaf_hash": bytes(row.leaf_hash).hex(),
        "entry": base64.b64encode(bytes(row.entry)).decode(),
        "path": [node.hex() for node in path],
        "checkpoint": _checkpoint_json(checkpoint, keys),
    }


def consistency_document(connection: sa.Connection, old: int, new: int | None) -> dict[str, Any]:
    if new is None:
        newest = load_checkpoints(connection, newest=1)
        if not newest:
            raise ProofUnavailable("the ledger has no checkpoints yet")
        new = newest[0].tree_size
    known = {c.tree_size: c for c in load_checkpoints(connection, sizes=[old, new])}
    for size in (old, new):
        if size not in known:
            sizes = _newest_sizes(connection)
            raise ProofUnavailable(f"no checkpoint of size {size} (latest sizes: {sizes})")
    if not 0 < old <= new:
        raise ProofUnavailable(f"the old checkpoint ({old}) must not be newer than the new ({new})")
    path = merkle.consistency_path(node_reader(connection), old, new) if old < new else []
    keys = load_public_keys(connection)
    return {
        "kind": "consistency",
        "path": [node.hex() for node in path],
        "old": _checkpoint_json(known[old], keys),
        "new": _checkpoint_json(known[new], keys),
    }

"""The compliance ledger: append events as Merkle leaves, sign checkpoints, prove, erase.

Appends are batched and idempotent by event id. Each batch runs in one transaction that
holds the ledger's write lock (:func:`audit.database.locked_head`), so several workers
can append to one database: the tree head (size and right-edge frontier) is read under
the lock, extended, and written back with the batch's entries, completed nodes and any
checkpoints due. Nothing of the history is re-read or rehashed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import canonical, database, proofs
from audit.appending import build_rows
from audit.checkpoints import Checkpoint, load_signing_key, sign
from audit.integrity import VerifyReport, verify_ledger
from audit.keyring import KeyRing
from audit.reading import read_entry, read_rows
from audit.rows import ExportFilter, LedgerRow
from audit.shredding import KeyWrapper, load_master_key
from audit.tables import checkpoints, entries, head, nodes, signing_keys, subject_keys
from schemas import Event, decode, new_event
from schemas.payloads import SubjectErased
from schemas.signing import key_id_of, raw_public_key, sign_event

SOURCE = "urn:factorstream:audit"
KEY_ROTATION = timedelta(days=30)
"""How long a subject's data key seals new entries; then a new key is made. The
granularity of personal data retention: an entry's personal fields are shredded between
the retention period and a rotation after it."""
ID_CHUNK = 5000  # ids per "already present?" query (SQLite allows 32,766 parameters)


class LedgerError(Exception):
    """Root of the ledger's errors: misuse, a refused request, infrastructure."""


@dataclass(frozen=True)
class AppendResult:
    appended: int
    skipped: int
    size: int
    checkpoints: list[Checkpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Erasure:
    tenant: str
    subject: str
    key_ids: list[str]
    event: Event


class Ledger:
    """One ledger database, with the keys that sign checkpoints and seal personal data."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        signing_key: Ed25519PrivateKey | None,
        master_key: bytes | None,
        checkpoint_every: int = 1000,
        checkpoint_interval: timedelta = timedelta(seconds=60),
        source: str = SOURCE,
        key_rotation: timedelta | None = KEY_ROTATION,
    ) -> None:
        """``key_rotation``: how long a subject's data key seals new entries before a new
        one is made (``None``: for ever); what lets :meth:`shred_older_than` reach old
        entries only. Every process appending to one ledger must use the same: keep the
        default."""
        self.engine = engine
        self.signing_key = signing_key
        wrapper = KeyWrapper(master_key) if master_key is not None else None
        self.keys = KeyRing(wrapper, rotate_after=key_rotation)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.source = source
        self._registered: set[str] = set()

    def migrate(self) -> None:
        database.migrate(self.engine)

    # -- appending ------------------------------------------------------------------------

    def append(self, events: Sequence[Event | bytes], *, now: datetime) -> AppendResult:
        """Append ``events`` (decoded, or structured-mode bytes) in one transaction.

        Events whose id is already in the ledger, or repeated in the batch, are skipped.
        """
        batch: dict[str, Event] = {}
        for item in events:
            event = decode(item) if isinstance(item, bytes | bytearray | memoryview) else item
            batch.setdefault(event.id, event)
        with database.locked_head(self.engine) as (connection, row):
            present = _present(connection, list(batch))
            todo = [event for event_id, event in batch.items() if event_id not in present]
            result = self._append_locked(connection, row, todo, now=now)
        return AppendResult(len(todo), len(events) - len(todo), result.size, result.checkpoints)

    def _append_locked(
        self, connection: sa.Connection, row: sa.Row[Any], todo: Sequence[Event], *, now: datetime
    ) -> AppendResult:
        frontier = database.frontier_of(row)
        prev, cp_size, cp_at = bytes(row.last_leaf), int(row.checkpoint_size), row.checkpoint_at
        split = [canonical.split_personal(event) for event in todo]
        owners = {e.partitionkey for e, (_, p) in zip(todo, split, strict=True) if p}
        keys = self.keys.active(connection, owners, now=now)
        batch = [(e, redacted, values) for e, (redacted, values) in zip(todo, split, strict=True)]
        rows, prev = build_rows(
            batch,
            frontier=frontier,
            prev=prev,
            keys=keys,
            now=now,
            checkpoint_every=self.checkpoint_every,
            checkpoint_size=cp_size,
        )
        entry_rows, node_rows = rows.entries, rows.nodes
        signed = [self._sign(connection, row.log_id, size, root, now) for size, root in rows.due]
        if signed:
            cp_size, cp_at = signed[-1].tree_size, now
        if cp_at is None:  # the first entries start the checkpoint clock
            cp_at = now
        if frontier.size > cp_size and now - cp_at >= self.checkpoint_interval:
            signed.append(self._sign(connection, row.log_id, frontier.size, frontier.root(), now))
            cp_size, cp_at = frontier.size, now
        database.bulk_insert(connection, entries, entry_rows)
        database.bulk_insert(connection, nodes, node_rows)
        if signed:
            _store_checkpoints(connection, signed)
        if entry_rows or signed:
            connection.execute(
                head.update()
                .where(head.c.id == database.HEAD_ID)
                .values(
                    size=frontier.size,
                    frontier=frontier.encode(),
                    last_leaf=prev,
                    checkpoint_size=cp_size,
                    checkpoint_at=cp_at,
                    updated_at=now,
                )
            )
        return AppendResult(len(entry_rows), 0, frontier.size, signed)

    # -- checkpoints ----------------------------------------------------------------------

    def _sign(
        self, connection: sa.Connection, log_id: str, size: int, root: bytes, now: datetime
    ) -> Checkpoint:
        if self.signing_key is None:
            raise LedgerError("a checkpoint is due but the ledger was opened without its key")
        self.register_key(connection, self.signing_key.public_key(), now=now)
        return sign(self.signing_key, log_id=log_id, tree_size=size, root_hash=root, time=now)

    def register_key(
        self, connection: sa.Connection, public_key: Ed25519PublicKey, *, now: datetime
    ) -> str:
        """Keep ``public_key`` in the database (once), so its checkpoints always verify."""
        key_id = key_id_of(public_key)
        if key_id in self._registered:
            return key_id
        known = connection.scalar(
            sa.select(signing_keys.c.key_id).where(signing_keys.c.key_id == key_id)
        )
        if known is None:
            connection.execute(
                signing_keys.insert().values(
                    key_id=key_id, public_key=raw_public_key(public_key), created_at=now
                )
            )
        self._registered.add(key_id)
        return key_id

    def tick(self, *, now: datetime, force: bool = False) -> list[Checkpoint]:
        """Sign a checkpoint if the interval has passed (or ``force``) and entries are new."""
        with database.locked_head(self.engine) as (connection, row):
            if int(row.size) == int(row.checkpoint_size):
                return []
            last = row.checkpoint_at
            if not force and (last is None or now - last < self.checkpoint_interval):
                return []
            frontier = database.frontier_of(row)
            checkpoint = self._sign(connection, row.log_id, frontier.size, frontier.root(), now)
            _store_checkpoints(connection, [checkpoint])
            connection.execute(
                head.update()
                .where(head.c.id == database.HEAD_ID)
                .values(checkpoint_size=frontier.size, checkpoint_at=now)
            )
        return [checkpoint]

    def checkpoints(self) -> list[Checkpoint]:
        with database.reading(self.engine) as connection:
            return proofs.load_checkpoints(connection)

    def unpublished(self) -> list[Checkpoint]:
        with database.reading(self.engine) as connection:
            return proofs.load_checkpoints(connection, unpublished=True)

    def mark_published(self, sizes: Sequence[int], *, now: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                checkpoints.update()
                .where(checkpoints.c.tree_size.in_(list(sizes)))
                .values(published_at=now)
            )

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        with database.reading(self.engine) as connection:
            return proofs.load_public_keys(connection)

    def size(self) -> int:
        with database.reading(self.engine) as connection:
            return int(connection.scalar(sa.select(head.c.size)) or 0)

    def last_checkpoint_at(self) -> datetime | None:
        """When the newest checkpoint was signed (``None``: none yet; the head's
        ``checkpoint_at`` starts with the first entries, before any checkpoint)."""
        newest = sa.select(checkpoints.c.signed_at).order_by(checkpoints.c.tree_size.desc())
        with database.reading(self.engine) as connection:
            found: datetime | None = connection.scalar(newest.limit(1))
        return found

    # -- proofs and verification -----------------------------------------------------------

    def prove(self, event_id: str, *, checkpoint: int | None = None) -> dict[str, Any]:
        """An inclusion proof (JSON object) of ``event_id`` against a signed checkpoint."""
        with database.reading(self.engine) as connection:
            try:
                return proofs.inclusion_document(connection, event_id, checkpoint)
            except proofs.ProofUnavailable as error:
                raise LedgerError(str(error)) from None

    def consistency(self, old: int, new: int | None = None) -> dict[str, Any]:
        """A consistency proof (JSON object) between two checkpoints, by tree size."""
        with database.reading(self.engine) as connection:
            try:
                return proofs.consistency_document(connection, old, new)
            except proofs.ProofUnavailable as error:
                raise LedgerError(str(error)) from None

    def verify(self, **options: Any) -> VerifyReport:
        """Recompute the whole tree and check every checkpoint (see ``audit.integrity``)."""
        return verify_ledger(self.engine, **options)

    # -- personal data ----------------------------------------------------------------------

    def erase(
        self,
        tenant: str,
        subject: str,
        *,
        now: datetime,
        requested_by: str,
        signer: Ed25519PrivateKey,
        reason: str = "subject_request",
        ticket: str | None = None,
    ) -> Erasure:
        """Destroy the subject's data keys and record ``privacy.subject.erased``, signed by
        ``signer`` (a control event: the worker accepts it only from a trusted key)."""
        with database.locked_head(self.engine) as (connection, row):
            key_ids = self.keys.destroy(connection, f"{tenant}/{subject}", now=now)
            event = new_event(
                SubjectErased(
                    requested_by=requested_by,
                    reason=reason,
                    ticket=ticket,
                    key_id=key_ids[0] if key_ids else None,
                ),
                source=self.source,
                tenant=tenant,
                subject=subject,
                correlationid=ticket or f"erase-{uuid.uuid4().hex}",
                now=now,
            )
            event = sign_event(event, signer)
            self._append_locked(connection, row, [event], now=now)
        database.checkpoint_wal(self.engine)  # SQLite: the old key pages leave the WAL too
        return Erasure(tenant, subject, key_ids, event)

    def shred_older_than(self, keep: timedelta, *, now: datetime) -> int:
        """Retention: destroy the data keys whose every entry is older than ``keep`` (those
        created before ``now - keep - key_rotation``), as erasure does: the entries, their
        hashes and proofs stay, their personal fields no longer open. Reaches an entry
        between ``keep`` and ``keep + key_rotation`` after it was recorded. Idempotent;
        the number of keys destroyed."""
        rotation = self.keys.rotate_after
        if rotation is None:
            raise LedgerError(
                "personal data retention needs key rotation: without it a subject's one key "
                "seals its newest entries too"
            )
        with database.locked_head(self.engine) as (connection, _row):
            destroyed = self.keys.expire(connection, created_before=now - keep - rotation, now=now)
        if destroyed:
            database.checkpoint_wal(self.engine)  # SQLite: the old key pages leave the WAL too
        return destroyed

    def oldest_readable_key(self) -> datetime | None:
        """When the oldest data key that still opens personal data was made (``None``:
        none): no entry it sealed is older."""
        with database.reading(self.engine) as connection:
            oldest: datetime | None = connection.scalar(
                sa.select(sa.func.min(subject_keys.c.created_at)).where(
                    subject_keys.c.erased_at.is_(None)
                )
            )
        return oldest

    def entry(self, sequence: int) -> LedgerRow | None:
        """The entry at ``sequence`` (``None``: none), personal data opened as by :meth:`rows`."""
        return read_entry(self.engine, self.keys, sequence)

    def rows(
        self, where: ExportFilter | None = None, *, chunk: int = 1000, newest_first: bool = False
    ) -> Iterator[LedgerRow]:
        """Entries in ledger order (or newest first), personal data opened where its key
        still exists."""
        yield from read_rows(
            self.engine, self.keys, where or ExportFilter(), chunk=chunk, newest_first=newest_first
        )


def _present(connection: sa.Connection, ids: list[str]) -> set[str]:
    """The ids among ``ids`` already in the ledger (one array parameter on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        query = sa.text("SELECT event_id FROM ledger_entries WHERE event_id = ANY(:ids)")
        return set(connection.scalars(query, {"ids": ids}))
    found: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        found.update(
            connection.scalars(sa.select(entries.c.event_id).where(entries.c.event_id.in_(chunk)))
        )
    return found


def _store_checkpoints(connection: sa.Connection, signed: Sequence[Checkpoint]) -> None:
    connection.execute(
        checkpoints.insert(),
        [
            {
                "tree_size": c.tree_size,
                "root_hash": c.root_hash,
                "signed_at": c.time,
                "key_id": c.key_id,
                "signature": c.signature,
                "published_at": None,
            }
            for c in signed
        ],
    )


def open_ledger(
    *,
    url: str,
    signing_key_file: Path | None,
    master_key_file: Path | None,
    checkpoint_every: int = 1000,
    checkpoint_interval_s: float = 60.0,
    create_keys: bool = True,
    migrate: bool = True,
) -> Ledger:
    """A ledger from settings values; a key file left ``None`` is not loaded.

    Key files missing on disk are created (mode 0600) when ``create_keys``.
    """
    ledger = Ledger(
        database.ledger_engine(url),
        signing_key=(
            load_signing_key(signing_key_file, create=create_keys) if signing_key_file else None
        ),
        master_key=(
            load_master_key(master_key_file, create=create_keys) if master_key_file else None
        ),
        checkpoint_every=checkpoint_every,
        checkpoint_interval=timedelta(seconds=checkpoint_interval_s),
    )
    if migrate:
        ledger.migrate()
    return ledger

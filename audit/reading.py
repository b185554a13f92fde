"""Reading entries back as :class:`audit.rows.LedgerRow`, personal data opened.

Filters go into SQL (tenant, subject, types, event time). Rows are read in chunks by
sequence number (keyset pagination, oldest or newest first), each chunk in its own short
read transaction, and the chunk's data keys are looked up once: a key erased meanwhile is
never used.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import msgspec
import sqlalchemy as sa

from audit import canonical, database
from audit.keyring import KeyRing
from audit.rows import ERASED, ExportFilter, LedgerRow
from audit.shredding import NONCE_BYTES
from audit.tables import entries


def _query(where: ExportFilter) -> sa.Select[Any]:
    query = sa.select(entries.c.seq, entries.c.recorded_at, entries.c.entry)
    if where.tenant is not None:
        query = query.where(entries.c.tenant == where.tenant)
    if where.subject is not None:
        query = query.where(entries.c.subject == where.subject)
    if where.types:
        query = query.where(entries.c.event_type.in_(sorted(where.types)))
    if where.since is not None:
        query = query.where(entries.c.event_time >= where.since)
    if where.until is not None:
        query = query.where(entries.c.event_time < where.until)
    return query


def read_rows(
    engine: sa.Engine, keys: KeyRing, where: ExportFilter, *, chunk: int, newest_first: bool = False
) -> Iterator[LedgerRow]:
    """Matching rows in ledger order (``newest_first``: the reverse; the first chunk then
    costs what the newest ``chunk`` rows cost, however long the ledger)."""
    query, bound = _query(where), None
    seq = entries.c.seq
    while True:
        page = query
        if bound is not None:
            page = page.where(seq < bound if newest_first else seq > bound)
        page = page.order_by(seq.desc() if newest_first else seq).limit(chunk)
        with database.reading(engine) as connection:
            batch = connection.execute(page).all()
            stored = [canonical.decode_entry(bytes(row.entry)) for row in batch]
            wanted = {s.sealed.key for s in stored if s.sealed is not None}
            ciphers = keys.readable(connection, wanted) if wanted else {}
        for row, entry in zip(batch, stored, strict=True):
            yield _row(int(row.seq), row.recorded_at, entry, ciphers)
        if len(batch) < chunk:
            return
        bound = int(batch[-1].seq)


def read_entry(engine: sa.Engine, keys: KeyRing, sequence: int) -> LedgerRow | None:
    """The entry at ``sequence`` (``None``: no such entry), personal data opened where its
    key still exists."""
    query = _query(ExportFilter()).where(entries.c.seq == sequence)
    with database.reading(engine) as connection:
        row = connection.execute(query).first()
        if row is None:
            return None
        stored = canonical.decode_entry(bytes(row.entry))
        wanted = {stored.sealed.key} if stored.sealed is not None else set()
        ciphers = keys.readable(connection, wanted) if wanted else {}
    return _row(int(row.seq), row.recorded_at, stored, ciphers)


def _row(seq: int, recorded_at: Any, entry: canonical.StoredEntry, ciphers: Any) -> LedgerRow:
    event = entry.event
    sealed = entry.sealed
    if sealed is None:
        return LedgerRow(sequence=seq, recorded_at=recorded_at, event=event, erased=())
    cipher = ciphers.get(sealed.key)
    if cipher is not None:
        raw = base64.b64decode(sealed.ct)
        context = canonical.sealed_context(event["id"], sealed.key)
        plaintext = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        canonical.put_back(event, msgspec.json.decode(plaintext))
        return LedgerRow(sequence=seq, recorded_at=recorded_at, event=event, erased=())
    canonical.put_back(event, dict.fromkeys(sealed.paths, ERASED))
    return LedgerRow(sequence=seq, recorded_at=recorded_at, event=event, erased=tuple(sealed.paths))

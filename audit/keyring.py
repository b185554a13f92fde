"""The per-subject data keys in the database, wrapped by the master key, with a cache.

The cache holds unwrapped keys by key id only; whether a key still exists is always
asked of the database (an erasure by another process is seen at once).

Rotation (``rotate_after``): a subject's key seals new entries only while it is younger
than that; then a new key is made. Every entry sealed under a key was thus recorded
before the key's ``created_at + rotate_after``, and destroying the keys created before a
time (:meth:`KeyRing.expire`) shreds the personal data of old entries only (retention),
the way erasure does for all of a subject's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit.shredding import KeyWrapper, new_data_key, new_key_id
from audit.tables import subject_keys

CACHE_LIMIT = 100_000


class KeyRing:
    def __init__(
        self, wrapper: KeyWrapper | None, *, rotate_after: timedelta | None = None
    ) -> None:
        """``rotate_after``: how long a key seals new entries (``None``: for ever)."""
        self.wrapper = wrapper
        self.rotate_after = rotate_after
        self._ciphers: dict[str, AESGCM] = {}

    def _remember(self, key_id: str, data_key: bytes) -> AESGCM:
        if len(self._ciphers) >= CACHE_LIMIT:
            self._ciphers.clear()
        cipher = self._ciphers[key_id] = AESGCM(data_key)
        return cipher

    def _unwrap(self, key_id: str, owner: str, wrapped: bytes) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            if self.wrapper is None:
                raise LookupError("the ledger was opened without its master key")
            tenant, _, subject = owner.partition("/")
            data_key = self.wrapper.unwrap(wrapped, key_id=key_id, tenant=tenant, subject=subject)
            cipher = self._remember(key_id, data_key)
        return cipher

    def active(
        self, connection: sa.Connection, owners: Iterable[str], *, now: datetime
    ) -> dict[str, tuple[str, AESGCM]]:
        """The live data key of each owner (``tenant/subject``), created where missing."""
        wanted = set(owners)
        if not wanted:
            return {}
        if self.wrapper is None:
            raise LookupError("the ledger was opened without its master key")
        found: dict[str, tuple[str, AESGCM]] = {}
        newest: dict[str, datetime] = {}
        fresh_from = None if self.rotate_after is None else now - self.rotate_after
        for key_id, owner, wrapped, created_at in _live_keys(connection, sorted(wanted)):
            created_at = _utc(created_at)
            if fresh_from is not None and created_at <= fresh_from:
                continue  # retired: it seals no more entries (retention shreds it later)
            if owner not in newest or created_at > newest[owner]:
                newest[owner] = created_at
                found[owner] = (key_id, self._unwrap(key_id, owner, bytes(wrapped)))
        created = []
        for owner in sorted(wanted - found.keys()):
            key_id, data_key = new_key_id(), new_data_key()
            tenant, _, subject = owner.partition("/")
            wrapped = self.wrapper.wrap(data_key, key_id=key_id, tenant=tenant, subject=subject)
            created.append(
                {"key_id": key_id, "owner": owner, "wrapped": wrapped, "created_at": now}
            )
            found[owner] = (key_id, self._remember(key_id, data_key))
        if created:
            connection.execute(subject_keys.insert(), created)
        return found

    def readable(self, connection: sa.Connection, key_ids: Iterable[str]) -> dict[str, AESGCM]:
        """The keys among ``key_ids`` that still exist (not erased).

        Without the master key none can be opened: personal data then reads as erased.
        """
        result: dict[str, AESGCM] = {}
        if self.wrapper is None:
            return result
        query = sa.select(subject_keys.c.key_id, subject_keys.c.owner, subject_keys.c.wrapped)
        for chunk in _chunks(sorted(set(key_ids))):
            rows = connection.execute(
                query.where(subject_keys.c.key_id.in_(chunk), subject_keys.c.wrapped.is_not(None))
            )
            for key_id, owner, wrapped in rows:
                result[key_id] = self._unwrap(key_id, owner, bytes(wrapped))
        return result

    def destroy(self, connection: sa.Connection, owner: str, *, now: datetime) -> list[str]:
        """Erase every live key of ``owner``; returns their ids."""
        key_ids = list(
            connection.scalars(
                sa.select(subject_keys.c.key_id).where(
                    subject_keys.c.owner == owner, subject_keys.c.erased_at.is_(None)
                )
            )
        )
        if key_ids:
            connection.execute(
                subject_keys.update()
                .where(subject_keys.c.key_id.in_(key_ids))
                .values(wrapped=None, erased_at=now)
            )
        for key_id in key_ids:
            self._ciphers.pop(key_id, None)
        return key_ids

    def expire(self, connection: sa.Connection, *, created_before: datetime, now: datetime) -> int:
        """Destroy every live key created before ``created_before`` (retention); how many."""
        ended = connection.execute(
            subject_keys.update()
            .where(subject_keys.c.created_at < created_before, subject_keys.c.erased_at.is_(None))
            .values(wrapped=None, erased_at=now)
        ).rowcount
        if ended:
            self._ciphers.clear()
        return int(ended)

    def forget(self, key_ids: Iterable[str]) -> None:
        for key_id in key_ids:
            self._ciphers.pop(key_id, None)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _live_keys(connection: sa.Connection, owners: list[str]) -> Iterable[Any]:
    """(key id, owner, wrapped key, created at) of the owners' live keys (one array on
    PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        query = sa.text(
            "SELECT key_id, owner, wrapped, created_at FROM ledger_subject_keys "
            "WHERE owner = ANY(:owners) AND erased_at IS NULL"
        )
        yield from connection.execute(query, {"owners": owners})
        return
    select = sa.select(
        subject_keys.c.key_id,
        subject_keys.c.owner,
        subject_keys.c.wrapped,
        subject_keys.c.created_at,
    )
    for chunk in _chunks(owners):
        yield from connection.execute(
            select.where(subject_keys.c.owner.in_(chunk), subject_keys.c.erased_at.is_(None))
        )


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]

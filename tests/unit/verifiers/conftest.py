"""Fixtures for the verifiers: a migrated store on a real SQLite file, requests at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.fields import Client, PolicyTier
from verifiers.crypto import SecretBox, new_key
from verifiers.store import Request, VerifierStore, store_engine

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SOURCE = "https://login.example.com/mfa"


def make_store(url: str, **options: Any) -> VerifierStore:
    store = VerifierStore(store_engine(url), SecretBox(new_key()), source=SOURCE, **options)
    store.migrate()
    return store


@pytest.fixture
def store(tmp_path: Path) -> VerifierStore:
    """A migrated verifier store on a fresh SQLite file."""
    return make_store(f"sqlite:///{tmp_path / 'verifiers.db'}")


@pytest.fixture
def request_at() -> Callable[..., Request]:
    """``request_at(now, subject=…, tier=…)``: a ceremony request at a given time."""

    def make(now: datetime = NOW, **fields: Any) -> Request:
        defaults: dict[str, Any] = {
            "tenant": "acme",
            "subject": "u-1001",
            "correlationid": "login-1",
            "tier": PolicyTier.CUSTOMER,
            "application": "payroll",
            "client": Client(ip="203.0.113.7", user_agent="pytest"),
        }
        return Request(now=now, **{**defaults, **fields})

    return make


def raw_dump(store: VerifierStore) -> bytes:
    """Everything the SQLite database holds: its files' bytes and an SQL text dump."""
    database = Path(store.engine.url.database or "")
    files = [database, database.with_name(database.name + "-wal")]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    connection = store.engine.raw_connection()
    try:
        text = "\n".join(connection.driver_connection.iterdump())  # type: ignore[union-attr]
    finally:
        connection.close()
    return raw + text.encode()

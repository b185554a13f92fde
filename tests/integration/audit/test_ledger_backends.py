"""The ledger on SQLite and PostgreSQL alike: proofs, erasure, concurrent writers."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit.checkpoints import public_pem
from audit.database import bulk_insert, ledger_engine
from audit.rows import ERASED, ExportFilter
from audit.tables import entries, metadata, subject_keys
from audit.verify import check_proof_document
from tests.factories import CONTROL_KEY, T0
from tests.unit.audit.ledger_support import CLIENT_IP, DEVICE_ID, events, open_test_ledger


def test_erasure_leaves_proofs_valid_and_no_personal_data_readable(
    ledger_url: str, tmp_path: Path
) -> None:
    ledger = open_test_ledger(tmp_path, ledger_url, every=10)
    batch = events(40, subjects=2)
    ledger.append(batch, now=T0)
    pems = [public_pem(k) for k in ledger.public_keys().values()]
    proofs = [ledger.prove(e.id) for e in batch if e.subject == "u-0"]
    consistency = ledger.consistency(10, 40)

    erasure = ledger.erase(
        "acme", "u-0", now=T0 + timedelta(days=1), requested_by="dpo-1", signer=CONTROL_KEY
    )
    assert len(erasure.key_ids) == 1

    rows = list(ledger.rows(ExportFilter(subject="u-0")))
    assert rows and all(CLIENT_IP not in json.dumps(r.event) for r in rows)
    assert all(DEVICE_ID not in json.dumps(r.event) for r in rows)
    assert any(r.erased and r.event["data"]["client"]["ip"] == ERASED for r in rows)
    with ledger.engine.connect() as connection:
        stored = b"".join(bytes(e) for e in connection.scalars(sa.select(entries.c.entry)))
        wrapped = connection.scalar(
            sa.select(subject_keys.c.wrapped).where(subject_keys.c.key_id == erasure.key_ids[0])
        )
    assert CLIENT_IP.encode() not in stored and b'"ct":"' in stored  # ciphertext only
    assert wrapped is None

    for proof in [*proofs, consistency]:
        check_proof_document(json.dumps(proof), public_keys=pems)
    assert ledger.prove(batch[0].id, checkpoint=40) == proofs[0]
    report = ledger.verify()
    assert report.ok and report.size == 41
    ledger.engine.dispose()


def test_concurrent_writers_append_every_event_exactly_once(
    ledger_url: str, tmp_path: Path
) -> None:
    writers = [open_test_ledger(tmp_path, ledger_url, every=50) for _ in range(3)]
    batch = events(300, subjects=7)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for start in range(0, 300, 20):  # every writer sends everything: overlaps
                offset = (start + 100 * index) % 300
                writers[index].append(batch[offset : offset + 20], now=T0)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    report = writers[0].verify()
    assert report.ok, report.problems
    assert report.size == 300
    ids = [row.event["id"] for row in writers[0].rows()]
    assert sorted(ids) == sorted(e.id for e in batch)
    for writer in writers:
        writer.engine.dispose()


def test_bulk_insert_stores_rows_as_given_and_refuses_naive_times(ledger_url: str) -> None:
    """The ledger's write path (a binary COPY on PostgreSQL, an executemany elsewhere)."""
    engine = ledger_engine(ledger_url)
    metadata.create_all(engine)
    row = {
        "seq": 0,
        "event_id": "e-0",
        "tenant": "acme",
        "subject": "u-0",
        "event_type": "auth.login.attempted",
        "event_time": T0,
        "recorded_at": T0 + timedelta(seconds=1),
        "entry": b"\x00entry\xff",
        "leaf_hash": bytes(range(32)),
    }
    with engine.begin() as connection:
        bulk_insert(connection, entries, [row])
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.select(entries)).mappings().one())
    assert {
        **stored,
        "entry": bytes(stored["entry"]),
        "leaf_hash": bytes(stored["leaf_hash"]),
    } == row

    naive = {**row, "seq": 1, "event_id": "e-1", "event_time": T0.replace(tzinfo=None)}
    with pytest.raises((ValueError, sa.exc.StatementError)), engine.begin() as connection:
        bulk_insert(connection, entries, [naive])
    engine.dispose()

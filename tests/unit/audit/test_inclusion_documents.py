"""Many proofs in one read (evidence packs): the same documents as one at a time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from audit import database, proofs
from tests.factories import T0
from tests.unit.audit.ledger_support import events, open_test_ledger


def test_many_proofs_equal_single_proofs_and_refuse_what_the_checkpoint_misses(
    tmp_path: Path,
) -> None:
    ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'l.db'}", every=37)
    batch = events(100)
    ledger.append(batch, now=T0 + timedelta(hours=1))
    ids = [e.id for e in batch[:74]]
    with database.reading(ledger.engine) as connection:
        many = list(proofs.inclusion_documents(connection, ids, 74))
        one = [proofs.inclusion_document(connection, i, 74) for i in ids]
        assert many == one
        with pytest.raises(proofs.ProofUnavailable, match="before entry 80"):
            list(proofs.inclusion_documents(connection, [batch[80].id], 74))
        with pytest.raises(proofs.ProofUnavailable, match="not in the ledger"):
            list(proofs.inclusion_documents(connection, ["nope"], 74))

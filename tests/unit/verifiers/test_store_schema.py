"""The verifier store's schema where a relay made the outbox first."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.unit.verifiers.conftest import make_store
from verifiers.publish import Outbox, outbox_engine


def test_the_store_adopts_an_outbox_a_relay_made_first(tmp_path: Path) -> None:
    """A deployment starts the relay and the MFA service together: when the relay's
    ``Outbox.create`` reaches the empty database first, the store's migration must not
    fail on the table being there (it did: ``table outbox_events already exists``)."""
    url = f"sqlite:///{tmp_path / 'verifiers.db'}"
    relay = Outbox(outbox_engine(url))
    relay.create()
    store = make_store(url)
    tables = sa.inspect(store.engine).get_table_names()
    assert {"outbox_events", "enrollments", "alembic_version"} <= set(tables)
    assert relay.pending() == 0
    make_store(url)  # and again: migrating a migrated store changes nothing

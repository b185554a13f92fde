"""Fixtures of the integration tier: fresh topics and outboxes on real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from factorstream.localkafka import ensure_topics
from tests.kafka_broker import KafkaBroker
from verifiers.publish import Outbox, metadata, outbox_engine, outbox_events


@pytest.fixture
def topic(kafka_broker: KafkaBroker) -> str:
    """A new 6-partition topic, so each test reads only what it wrote."""
    name = f"test.events.{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_broker.bootstrap, {name: 6})
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    """An empty outbox on SQLite (file) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = outbox_engine(url)
    metadata.drop_all(engine)
    box = Outbox(engine)
    box.create()
    yield box
    engine.dispose()


def sqlite_outbox(path: Path) -> Outbox:
    box = Outbox(outbox_engine(f"sqlite:///{path}"))
    box.create()
    return box


def count_sent(box: Outbox) -> int:
    with box.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(outbox_events.c.sent_at.is_not(None))
        return int(connection.execute(query).scalar_one())

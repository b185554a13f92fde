"""pytest plugin: a real Apache Kafka broker for the tests that ask for ``kafka_broker``.

The broker is the one ``factorstream kafka up`` runs (``factorstream.localkafka``), on
free ports in a temporary data dir, with the pipeline's topics. It starts only when a
test requests the fixture, lives for the session, and is stopped at the end. The jars
come from the shared cache (``~/.cache/factorstream``), so only the first run ever pays
for provisioning. Without java/mvn (or when provisioning fails) the tests are skipped
locally and fail under CI=true (``tests.support.missing``).

Outage tests stop and restart it on the same data dir::

    def test_relay_survives_outage(kafka_broker):
        with kafka_broker.outage():       # kill -9 now, start again on leaving the block
            ...                           # the broker is down in here
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from factorstream.localkafka import (
    KafkaUnavailable,
    LocalKafka,
    ensure_topics,
    free_port,
    provision,
    require_tools,
)
from factorstream.settings import Settings
from tests.support import missing


@dataclass
class KafkaBroker:
    """The session's broker: where to connect, its topics, and the broker to stop/start."""

    bootstrap: str
    topics: dict[str, int]
    local: LocalKafka

    def stop(self, *, hard: bool = False) -> None:
        """Take the broker down (``hard``: kill -9, like a crash); data stays."""
        if hard:
            self.local.kill()
        else:
            self.local.stop()

    def start(self) -> None:
        """Start it again on the same data dir and ports, waiting until it answers."""
        self.local.start()

    @contextmanager
    def outage(self, *, hard: bool = True) -> Iterator[None]:
        """The broker is down inside the block and running again after it (even on error)."""
        self.stop(hard=hard)
        try:
            yield
        finally:
            self.start()


def provisioned_or_missing(settings: Settings, version: str) -> None:
    """Provision the Kafka jars, or skip (locally) / fail (CI) when that is impossible."""
    try:
        require_tools("java")
        provision(version, settings.cache_dir)
    except KafkaUnavailable as error:
        missing("Apache Kafka broker", str(error))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A running single-node Kafka broker with the pipeline's topics (session scoped)."""
    settings = Settings()
    local = LocalKafka(
        data_dir=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=settings.cache_dir,
    )
    provisioned_or_missing(settings, local.version)
    atexit.register(local.kill)  # an interrupted session must not leave a JVM behind
    try:
        local.start()
        topics = settings.topics.partitions()
        ensure_topics(local.bootstrap, topics)
        yield KafkaBroker(bootstrap=local.bootstrap, topics=topics, local=local)
    finally:
        local.stop()
        atexit.unregister(local.kill)

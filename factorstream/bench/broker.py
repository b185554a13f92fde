"""The broker a benchmark runs against: the one given, or a private local one."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from factorstream.localkafka import LocalKafka, free_port
from factorstream.settings import KafkaSecuritySettings, Settings


@contextlib.contextmanager
def broker_for(settings: Settings, bootstrap: str | None) -> Iterator[Settings]:
    """``settings`` pointing at ``bootstrap`` (with their ``kafka_security``), or at a
    private local broker (PLAINTEXT) for the duration of the run."""
    if bootstrap:
        yield settings.model_copy(update={"kafka_bootstrap": bootstrap})
        return
    with tempfile.TemporaryDirectory(prefix="factorstream-bench-kafka-") as tmp:
        broker = LocalKafka(
            data_dir=Path(tmp),
            port=free_port(),
            controller_port=free_port(),
            cache_dir=settings.cache_dir,
        )
        broker.start()
        try:
            yield settings.model_copy(
                update={
                    "kafka_bootstrap": broker.bootstrap,
                    "kafka_security": KafkaSecuritySettings(),
                }
            )
        finally:
            broker.stop()

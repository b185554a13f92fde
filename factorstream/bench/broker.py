"""The broker a benchmark runs against: the one given, or a private local one."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from factorstream.localkafka import LocalKafka, free_port
from factorstream.settings import Settings


@contextlib.contextmanager
def broker_for(settings: Settings, bootstrap: str | None) -> Iterator[str]:
    """``bootstrap``, or a private local broker for the duration of the run."""
    if bootstrap:
        yield bootstrap
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
            yield broker.bootstrap
        finally:
            broker.stop()

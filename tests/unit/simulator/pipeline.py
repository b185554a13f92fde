"""The worker's pure half over a simulated event stream: ``streams.replay`` at default
settings (geo enrichment from the bundled data, every fold by its key)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from factorstream.settings import Settings
from factorstream.stream_config import replay_settings
from schemas import Event, encode, kafka_key
from streams.replay import TopicRecord


def derived_labels(events: Iterable[Event]) -> Counter[str]:
    """What the stream derives from ``events`` (in order), by ``risk.detected/<detection>``
    for risks and the type for everything else, counted."""
    records = (
        TopicRecord(0, n, int(e.time.timestamp() * 1000), kafka_key(e), encode(e))
        for n, e in enumerate(events)
    )
    return replay_settings(records, Settings()).derived

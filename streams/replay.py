"""Replay: every fold of the worker over a log, in one process, into fresh tables.

The same steps as the worker (``streams/app.py``) without Kafka in between: decode (what
fails is counted as dead-lettered), drop duplicate ids (within the dedupe window, by
event time, as ingest does), enrich, then every fold by its key — the lockout fold and
the detections per ``partitionkey``, the re-keyed detections and per-IP throttling per
IP or tenant. The result is the reference the worker's tables are compared with
(``streams.digest``): a replay of the same log always gives the same digest.

Order: each partition in offset order, partitions merged by record timestamp (then
partition number). That is the worker's order for every ``partitionkey`` table (one
partition per key). For the re-keyed tables (per IP, per tenant) the worker's order
across partitions depends on timing; their windows are by event time, so they agree
whenever events of one IP or tenant are not racing across partitions at a threshold.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from factorstream.settings import Settings
from schemas import Event, EventDecodeError, kafka_key
from streams.detection_agents import detection_folds, detection_thresholds, ip_block_policy
from streams.enrich import open_enricher
from streams.folds import subject_key
from streams.ingest import Headers, decode_record
from streams.lockout_agent import KeyedFold, lockout_fold
from streams.positions import JsonState
from streams.rekey import KeyOf

Tables = dict[str, dict[bytes, JsonState]]
"""Fold state by table name and key (the table key bytes the worker uses)."""


@dataclass(frozen=True)
class LogRecord:
    """One record of the events topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass
class Replayed:
    """Fresh tables and what the replay counted on the way."""

    tables: Tables
    records: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    derived: Counter[str] = field(default_factory=Counter)
    """Derived events by :func:`derived_label` (type, and for risks the detection)."""


def derived_label(event: Event) -> str:
    """``risk.detected/<detection>`` for a risk, else the event's type."""
    detection = getattr(event.data, "detection", None)
    return f"{event.type}/{detection}" if event.type == "risk.detected" else event.type


def pipeline_folds(settings: Settings) -> list[tuple[KeyedFold, KeyOf]]:
    """Every fold the worker runs, with the key function of its table."""
    return [
        (lockout_fold(settings.stream.default_tier), subject_key),
        *detection_folds(
            detection_thresholds(settings.detections), ip_block_policy(settings.ip_block)
        ),
    ]


def merge_partitions(partitions: Iterable[Iterable[LogRecord]]) -> Iterator[LogRecord]:
    """Partitions (each in offset order) merged by record timestamp, then partition."""
    return heapq.merge(*partitions, key=lambda r: (r.timestamp_ms, r.partition))


def replay(
    records: Iterable[LogRecord],
    *,
    folds: Sequence[tuple[KeyedFold, KeyOf]],
    dedupe_window_s: float,
    enrich: Callable[[Event], Event] | None = None,
    on_record: Callable[[], None] | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> Replayed:
    """Fold ``records`` (in the order given) into fresh tables.

    ``stage_seconds`` (for a profile of where the time goes) adds up the seconds spent in
    decoding, dedupe, enrichment and each fold.
    """
    result = Replayed(tables={fold.name: {} for fold, _ in folds})
    seen: set[tuple[str, int]] = set()
    clock = _Stages(stage_seconds)
    for record in records:
        result.records += 1
        if on_record is not None:
            on_record()
        clock.start()
        try:
            event = decode_record(record.value, record.headers)
        except EventDecodeError:
            result.dead_lettered += 1
            continue
        finally:
            clock.lap("decode")
        window = (event.id, int(event.time.timestamp() // dedupe_window_s))
        if window in seen:
            result.duplicates += 1
            continue
        seen.add(window)
        clock.lap("dedupe")
        if enrich is not None:
            event = enrich(event)
            clock.lap("enrich")
        for fold, key_of in folds:
            key = key_of(event)
            if key is not None:
                table_key = kafka_key(event) if key_of is subject_key else key.encode()
                table = result.tables[fold.name]
                new, derived = fold.step(table.get(table_key), event)
                if new is None:
                    table.pop(table_key, None)
                else:
                    table[table_key] = new
                result.derived.update(derived_label(out) for out in derived)
            clock.lap(fold.name)
    return result


class _Stages:
    """Seconds per stage, when asked for (else free)."""

    def __init__(self, seconds: dict[str, float] | None) -> None:
        self.seconds, self.last = seconds, 0.0

    def start(self) -> None:
        if self.seconds is not None:
            self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self.seconds is not None:
            now = time.perf_counter()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self.last
            self.last = now


def replay_settings(
    records: Iterable[LogRecord],
    settings: Settings,
    *,
    on_record: Callable[[], None] | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> Replayed:
    """:func:`replay` with the folds, window and enrichment ``settings`` configure."""
    enrich = settings.stream.enrich
    enricher = (
        open_enricher(
            mmdb_path=enrich.mmdb_path,
            asn_mmdb_path=enrich.asn_mmdb_path,
            cache_size=enrich.cache_size,
        )
        if enrich.enabled
        else None
    )
    return replay(
        records,
        folds=pipeline_folds(settings),
        dedupe_window_s=settings.stream.dedupe_window_s,
        enrich=enricher.enrich if enricher else None,
        on_record=on_record,
        stage_seconds=stage_seconds,
    )

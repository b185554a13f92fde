"""Replay: every stage of the worker over a log, in one process, into fresh tables.

The same stages as the worker (``streams/stages.py``, wired by ``streams/engine.py``)
without Kafka in between, a chunk of records at a time: ingest (decode, dead-letter,
enrich), then the subjects stage (dedupe, lockout and the per-subject detections), then
the re-keyed stages (per IP, per tenant) over what the subjects stage forwarded. The
result is the reference the worker's tables are compared with (``streams.digest``): a
replay of the same log always gives the same digest, whatever the chunk size.

Order: each partition in offset order, partitions merged by record timestamp (then
partition number). That is the worker's order for every ``partitionkey`` table (one
partition per key). For the re-keyed tables (per IP, per tenant) the worker's order
across partitions depends on timing; their folds are defined so that it does not matter
(see their modules).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas import Event
from streams.ingest import Headers
from streams.positions import ORIGIN_HEADER
from streams.stages import (
    BY_IP,
    BY_TENANT,
    INGESTED,
    Emit,
    Ingest,
    KeyedStage,
    Record,
    StateCache,
    fold_states,
)
from streams.topology import Topology

Tables = dict[str, dict[bytes, dict[str, Any]]]
"""Fold state by fold name and key (the table key bytes the worker uses)."""
CHUNK = 2_000
"""Records per chunk: every stage runs over a chunk before the next one starts."""


@dataclass(frozen=True)
class TopicRecord:
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
    stored: dict[str, dict[bytes, dict[str, Any]]] = field(default_factory=dict)
    """Each stage table's stored values, as the worker's changelogs hold them."""


def derived_label(event: Event) -> str:
    """``risk.detected/<detection>`` for a risk, else the event's type."""
    detection = getattr(event.data, "detection", None)
    return f"{event.type}/{detection}" if event.type == "risk.detected" else event.type


def merge_partitions(partitions: Iterable[Iterable[TopicRecord]]) -> Iterator[TopicRecord]:
    """Partitions (each in offset order) merged by record timestamp, then partition."""
    return heapq.merge(*partitions, key=lambda r: (r.timestamp_ms, r.partition))


class _Table:
    """A stage's table in memory, with the live cache the worker keeps in front of it."""

    def __init__(self, stage: KeyedStage) -> None:
        self.stage = stage
        self.stored: dict[bytes, dict[str, Any]] = {}
        self.cache: StateCache = stage.cache(self.stored.get, capacity=1 << 62)

    def flush(self) -> None:
        for key, _, value in self.cache.flush():
            if value is None:
                self.stored.pop(key, None)
            else:
                self.stored[key] = value

    def run(
        self,
        records: list[Record],
        result: Replayed,
        on_derived: Callable[[Event], None] | None = None,
    ) -> list[Emit]:
        out = self.stage.process(records, self.cache)
        result.duplicates += out.duplicates
        result.dead_lettered += out.dead_lettered
        result.derived.update(derived_label(event) for event in out.derived)
        if on_derived is not None:
            for event in out.derived:
                on_derived(event)
        return out.emits


def replay(
    records: Iterable[TopicRecord],
    *,
    stages: Topology,
    enrich: Callable[[Event], Event] | None = None,
    max_ahead: timedelta | None = None,
    control_keys: Mapping[str, Ed25519PublicKey] | None = None,
    topic: str = "events",
    on_record: Callable[[], None] | None = None,
    on_derived: Callable[[Event], None] | None = None,
    stage_seconds: dict[str, float] | None = None,
    chunk: int = CHUNK,
) -> Replayed:
    """Run every stage over ``records`` (in the order given) into fresh tables.

    ``on_derived`` is given each event a stage derives (lockouts, blocks, detections), in
    the order derived: what the worker would produce and the ledger append. ``stage_seconds``
    (for a profile of where the time goes) adds up the seconds spent in each stage.
    """
    result = Replayed(tables={})
    ingest = Ingest(enrich, max_ahead, control_keys or {})
    tables = {stage.name: _Table(stage) for stage in stages.stages}
    subjects, ips, tenants = (tables[s.name] for s in stages.stages)
    clock = _Stages(stage_seconds)
    source = iter(records)
    while batch := list(islice(source, chunk)):
        result.records += len(batch)
        if on_record is not None:
            for _ in batch:
                on_record()
        clock.start()
        incoming = [
            Record(topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers)
            for r in batch
        ]
        emitted = ingest.process(incoming)
        result.dead_lettered += emitted.dead_lettered
        clock.lap("ingest")
        forwarded = subjects.run(_records(emitted.emits, INGESTED), result, on_derived)
        clock.lap(stages.subjects.name)
        ips.run(_records(forwarded, BY_IP), result, on_derived)
        clock.lap(stages.ips.name)
        tenants.run(_records(forwarded, BY_TENANT), result, on_derived)
        clock.lap(stages.tenants.name)
    for stage in stages.stages:
        table = tables[stage.name]
        table.flush()
        stored = table.stored
        result.stored[stage.name] = stored
        for fold in stage.folds:
            result.tables[fold.name] = fold_states(stored, fold.name)
    return result


def _records(emits: Iterable[Emit], role: str) -> list[Record]:
    """The records of one role among ``emits``, as the next stage reads them (partition:
    the origin partition, offsets in order: what positions need to tell them apart)."""
    found = [e for e in emits if e.role == role]
    return [
        Record(role, _origin_partition(e.headers), n, 0, e.key, e.value, e.headers, e.event)
        for n, e in enumerate(found)
    ]


def _origin_partition(headers: Sequence[tuple[str, bytes | None]]) -> int:
    for name, value in headers:
        if name == ORIGIN_HEADER and value:
            return int(value.split(b":")[0])
    return 0


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


def stored_fold_tables(
    stored: Mapping[str, Mapping[bytes, Mapping[str, Any] | None]], stages: Topology
) -> Tables:
    """Fold states by fold name out of each stage table's stored values (a worker's
    changelogs): what :func:`streams.digest.state_digest` compares with a replay."""
    return {
        fold.name: fold_states(stored.get(stage.name, {}), fold.name)
        for stage in stages.stages
        for fold in stage.folds
    }

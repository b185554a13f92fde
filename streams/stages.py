"""The stream engine's stages: what the worker does with one batch of records (pure).

The worker (``streams/engine.py``) hands each stage whole batches, one partition of one
topic at a time, and does the I/O around it; :mod:`streams.replay` runs the same stages in
memory. A stage never touches Kafka, Faust, the clock or the environment. :class:`Ingest`
decodes, dead-letters, enriches and forwards; a :class:`KeyedStage` (subjects, IPs,
tenants) folds each key's state, held as live objects (:class:`KeyRecord`) in a
:class:`StateCache` in front of its table, and returns the records to produce. The keys it
changed stay dirty until the caller flushes them, once per commit, after the records are
durable: that order is the crash story. The stages, their topics and a key's stored form:
docs/stream-engine.md#the-stages.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas import Event, EventDecodeError, decode, encode, kafka_key
from schemas.codec import structured_headers
from schemas.signing import GATED, check_producer
from streams.ingest import Headers, dead_letter, decode_record
from streams.positions import Position, origin_header, origin_of, position_of, via_header

JsonState = dict[str, Any]
STORED_VERSION: Final = 1

# -- the roles of the topics a stage produces to (the worker maps them to names) --------
INGESTED: Final = "ingested"
DLQ: Final = "dlq"
LOCKOUTS: Final = "lockouts"
ANOMALIES: Final = "anomalies"
BY_IP: Final = "ip"
BY_TENANT: Final = "tenant"
BY_SUBJECT: Final = "subject"
"""Ingest's forwards that belong to another partition's subjects (a producer that keyed
its record otherwise than by ``partitionkey``): the subjects stage reads them there."""

_STRUCTURED: Final = tuple(structured_headers())


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record a stage reads."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()
    event: Event | None = None
    """The value decoded already (in-process replay hands events from stage to stage)."""


@dataclass(frozen=True, slots=True)
class Emit:
    """One record a stage produces: to the topic of role ``role``, partitioned by ``key``."""

    role: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    event: Event | None = None
    """The event ``value`` encodes, for a next stage in the same process (replay)."""


@dataclass
class StageOutput:
    """What one batch made: records to produce (in order) and counts; the keys it changed
    are dirty in the stage's :class:`StateCache`."""

    emits: list[Emit] = field(default_factory=list)
    dead_lettered: int = 0
    duplicates: int = 0
    skipped: int = 0
    """Records applied already (read again after a crash or rebalance)."""
    derived: list[Event] = field(default_factory=list)
    local: list[Record] = field(default_factory=list)
    """Ingest's forwards whose subject lives in the partition the batch came from, as the
    subjects stage reads them: that stage takes them in the same batch (no hop)."""


# -- ingest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    """Decode, dead-letter, enrich and forward (stateless).

    ``max_ahead``: an event dated more than this after its record's timestamp is refused
    (to the dead-letter topic, with the reason). A future-dated failure would hold a lock
    until its own time, a future-dated erasure would blank later events: the record's
    timestamp is the broker's clock when the events topic keeps ``LogAppendTime``
    (:meth:`factorstream.settings.TopicSettings.configs`), so a producer cannot set it,
    and a replay of the log decides exactly as the worker did. ``None``: no check.

    ``control_keys``: the keys (by key id) whose signature makes a control event
    (erasure, override, temporary access) acceptable; events the pipeline derives itself
    are refused whatever they carry (:func:`schemas.signing.check_producer`).

    ``partition_of`` (the worker's; ``None`` in a replay): the partition of the subjects
    table a ``partitionkey`` lives in. Every event is forwarded to the ingested topic (the
    sinks read it); one whose subject lives in the partition its record came from is also
    handed to the subjects stage in the same batch (:attr:`StageOutput.local`), any other
    is forwarded to the :data:`BY_SUBJECT` topic, where the subjects stage of its own
    partition reads it.
    """

    enrich: Callable[[Event], Event] | None = None
    max_ahead: timedelta | None = None
    control_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    partition_of: Callable[[bytes], int] | None = None

    def process(self, records: Iterable[Record]) -> StageOutput:
        out = StageOutput()
        emits, enrich = out.emits, self.enrich
        ahead_ms = None if self.max_ahead is None else self.max_ahead / timedelta(milliseconds=1)
        control_keys, partition_of, local = self.control_keys, self.partition_of, out.local
        for record in records:
            try:
                event = decode_record(record.value, record.headers)
                if ahead_ms is not None:
                    _check_not_ahead(event, record.timestamp_ms, ahead_ms)
                if event.type in GATED:
                    check_producer(event, control_keys)
            except EventDecodeError as error:
                emits.append(_dead_letter(record, error))
                out.dead_lettered += 1
                continue
            if enrich is not None:
                event = enrich(event)
            headers: Headers = [*_STRUCTURED, origin_header(record.partition, record.offset)]
            key, value = kafka_key(event), encode(event)
            emits.append(Emit(INGESTED, key, value, headers, event))
            if partition_of is None:
                continue
            if partition_of(key) == record.partition:
                local.append(
                    Record(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.timestamp_ms,
                        key,
                        value,
                        headers,
                        event,
                    )
                )
            else:
                emits.append(Emit(BY_SUBJECT, key, value, headers, event))
        return out


def _check_not_ahead(event: Event, record_ms: int, ahead_ms: float) -> None:
    time_ms = event.time.timestamp() * 1000
    if time_ms > record_ms + ahead_ms:
        recorded = datetime.fromtimestamp(record_ms / 1000, UTC).isoformat()
        raise EventDecodeError(
            "time",
            f"{event.time.isoformat()} is more than {ahead_ms / 1000:g} s after the record's "
            f"timestamp ({recorded}): an event from the future is refused",
        )


def _dead_letter(record: Record, error: EventDecodeError) -> Emit:
    letter = dead_letter(
        error,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp_ms / 1000,
        key=record.key,
        value=record.value,
        headers=list(record.headers),
    )
    return Emit(DLQ, letter.key, letter.value, letter.headers)


# -- keyed stages -------------------------------------------------------------------------

S = TypeVar("S")


@dataclass(frozen=True)
class LiveFold(Generic[S]):
    """A pure fold over live state objects, as a keyed stage runs it.

    ``fold`` returns the very state object it was given when the event changed nothing.
    """

    name: str
    key: Callable[[Event], str | None]
    """The fold's key of an event; ``None``: the fold ignores the event."""
    fold: Callable[[S, Event], tuple[S, list[Event]]]
    empty: Callable[[], S]
    load: Callable[[Mapping[str, Any]], S]
    dump: Callable[[S], JsonState]
    output: str
    """Role of the topic its derived events go to (:data:`LOCKOUTS`, :data:`ANOMALIES`)."""
    dump_after: Callable[[S, S, JsonState], JsonState] | None = None
    """``(state, previous, previous's dump) -> state's dump``: a cheaper ``dump`` that
    reuses what the state shares with the one dumped before (``None``: ``dump``)."""


@dataclass(frozen=True)
class Route:
    """A re-keyed topic (role :data:`BY_IP` or :data:`BY_TENANT`) and its key of an event:
    the first key any of its folds gives (``None``: no fold there wants the event)."""

    role: str
    keys: tuple[Callable[[Event], str | None], ...]

    def key(self, event: Event) -> str | None:
        for key_of in self.keys:
            key = key_of(event)
            if key is not None:
                return key
        return None


class KeyRecord:
    """One key's live state: every fold's state, positions applied, recent event ids."""

    __slots__ = ("_dumped", "applied", "newest", "partition", "recent", "states")

    def __init__(
        self,
        states: dict[str, Any] | None = None,
        applied: dict[str, int] | None = None,
        recent: dict[str, float] | None = None,
    ) -> None:
        self.states: dict[str, Any] = states or {}
        self.applied: dict[str, int] = applied or {}
        self.recent: dict[str, float] = recent or {}
        self.newest = max(self.recent.values(), default=float("-inf"))
        self.partition = 0
        """The table partition the key lives in (its source topic partition)."""
        self._dumped: dict[str, tuple[Any, JsonState]] = {}

    @classmethod
    def load(
        cls, stored: Mapping[str, Any] | None, folds: Mapping[str, LiveFold[Any]]
    ) -> KeyRecord:
        """The live record of a stored form (``None``: a key never seen); a stored fold
        state this stage no longer runs is dropped."""
        if stored is None:
            return cls()
        if stored.get("version") != STORED_VERSION:
            raise ValueError(
                f"stored key: version {stored.get('version')!r} is not {STORED_VERSION}"
            )
        states: dict[str, Any] = {}
        dumped: dict[str, tuple[Any, JsonState]] = {}
        for name, value in (stored.get("states") or {}).items():
            fold = folds.get(name)
            if fold is not None and value is not None:
                states[name] = fold.load(value)
                dumped[name] = (states[name], value)
        recent = {str(i): float(t) for i, t in stored.get("recent") or ()}
        record = cls(
            states, {str(c): int(o) for c, o in (stored.get("applied") or {}).items()}, recent
        )
        record._dumped = dumped
        return record

    def stored(self, folds: Mapping[str, LiveFold[Any]]) -> JsonState | None:
        """The stored form (``None``: nothing worth keeping); each fold state is dumped
        only when its object changed since the last time."""
        states: JsonState = {}
        for name, state in self.states.items():
            last = self._dumped.get(name)
            if last is not None and last[0] is state:
                states[name] = last[1]
                continue
            fold = folds[name]
            if last is not None and fold.dump_after is not None:
                states[name] = fold.dump_after(state, *last)
            else:
                states[name] = fold.dump(state)
            self._dumped[name] = (state, states[name])
        if not states and not self.applied and not self.recent:
            return None
        value: JsonState = {
            "version": STORED_VERSION,
            "states": states,
            "applied": dict(self.applied),
        }
        if self.recent:
            value["recent"] = [[event_id, at] for event_id, at in self.recent.items()]
        return value

    def seen(self, event_id: str, window_s: float) -> bool:
        """Was ``event_id`` applied to this key within ``window_s`` before the newest event?"""
        first = self.recent.get(event_id)
        return first is not None and first >= self.newest - window_s

    def remember(self, event_id: str, at: float, window_s: float, limit: int) -> None:
        """Keep ``event_id`` for dedupe; forget ids that left the window (they can never
        count as duplicates again, so when that happens changes no decision)."""
        recent = self.recent
        recent[event_id] = at
        if at > self.newest:
            self.newest = at
        horizon = self.newest - window_s
        while recent:  # ids come mostly in time order: the oldest are in front
            first = next(iter(recent))
            if recent[first] >= horizon:
                break
            del recent[first]
        if len(recent) > limit:  # more than ``limit`` ids in one window: keep the newest
            self.recent = dict(sorted(recent.items(), key=lambda item: (item[1], item[0]))[-limit:])


class StateCache:
    """Live :class:`KeyRecord` objects in front of a stage's table: a write-back cache.

    ``load`` reads a key's stored form on a miss. A key a batch changed is *dirty* until
    :meth:`flush` hands its stored form over (the worker does that just before it commits
    offsets, after the records the batch produced are durable), so a hot key costs one
    table write per commit, not one per event. Dirty keys are never evicted; clean ones
    are dropped, least recently used first, past ``capacity``.
    """

    def __init__(
        self,
        load: Callable[[bytes], Mapping[str, Any] | None],
        folds: Mapping[str, LiveFold[Any]],
        *,
        capacity: int = 100_000,
    ) -> None:
        self._load, self._folds, self.capacity = load, folds, capacity
        self._records: OrderedDict[bytes, KeyRecord] = OrderedDict()
        self.dirty: dict[bytes, KeyRecord] = {}
        self.misses = 0
        self.partition = 0
        """The partition of the batch being processed: keys loaded now live there."""

    def get(self, key: bytes) -> KeyRecord:
        record = self._records.get(key)
        if record is None:
            self.misses += 1
            record = self.dirty.get(key)
            if record is None:
                record = KeyRecord.load(self._load(key), self._folds)
                record.partition = self.partition
            self._records[key] = record
            while len(self._records) > self.capacity:
                old, evicted = self._records.popitem(last=False)
                if old in self.dirty:  # kept through the dirty map until the flush
                    continue
                del evicted
        else:
            self._records.move_to_end(key)
        return record

    def flush(self) -> list[tuple[bytes, int, JsonState | None]]:
        """Each dirty key, its partition and stored form (``None``: delete it); every key
        is clean again."""
        folds, dirty = self._folds, self.dirty
        self.dirty = {}
        return [(key, record.partition, record.stored(folds)) for key, record in dirty.items()]

    def peek(self, key: bytes) -> JsonState | None:
        """A cached key's stored form, without loading or reordering (``None``: not cached)."""
        record = self.dirty.get(key) or self._records.get(key)
        return None if record is None else record.stored(self._folds)

    def clear(self) -> None:
        """Forget every key, dirty ones too (after a rebalance, or when a batch failed:
        the table and the log are the truth, and the records are read again)."""
        self._records.clear()
        self.dirty = {}

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class KeyedStage:
    """Every fold of one kind of key, in one pass over a batch.

    ``by_record_key``: the table key is the record's key (re-keyed topics); otherwise the
    event's ``partitionkey``. ``via``: positions are channels ``<via>:<origin>`` (re-keyed
    topics, ``streams.positions``). ``dedupe_window_s`` (subjects only): an id applied to
    the key within that many seconds of event time before its newest event is dropped.
    """

    name: str
    folds: tuple[LiveFold[Any], ...]
    routes: tuple[Route, ...] = ()
    by_record_key: bool = False
    dedupe_window_s: float | None = None
    dedupe_limit: int = 10_000

    @property
    def by_name(self) -> dict[str, LiveFold[Any]]:
        return {fold.name: fold for fold in self.folds}

    def cache(
        self, load: Callable[[bytes], Mapping[str, Any] | None], *, capacity: int
    ) -> StateCache:
        return StateCache(load, self.by_name, capacity=capacity)

    def process(self, records: Iterable[Record], cache: StateCache) -> StageOutput:
        out = StageOutput()
        emits, derived_all = out.emits, out.derived
        changed = cache.dirty
        via = self.by_record_key
        window = self.dedupe_window_s
        folds, routes = self.folds, self.routes
        for record in records:
            try:
                event = record.event or decode(record.value or b"", record.headers)
            except EventDecodeError as error:  # only our stages write here: a bug, kept
                emits.append(_dead_letter(record, error))
                out.dead_lettered += 1
                continue
            key = record.key if via else kafka_key(event)
            if key is None:
                continue
            state = cache.get(key)
            position = position_of(record.headers, via=via)
            if position is not None and _applied(state, position):
                out.skipped += 1  # read again after a crash: its effect is in the table
                continue
            at = event.time.timestamp()
            if window is not None:
                if state.seen(event.id, window):
                    out.duplicates += 1
                    if position is not None:
                        state.applied[position.channel] = position.offset
                        changed[key] = state
                    continue
                state.remember(event.id, at, window, self.dedupe_limit)
                touched = True
            else:
                touched = False
            states = state.states
            for fold in folds:
                if fold.key(event) is None:
                    continue
                before = states.get(fold.name)
                start = fold.empty() if before is None else before
                after, derived = fold.fold(start, event)
                if after is not start:  # (an equal new object: one needless write)
                    states[fold.name] = after
                    touched = True
                if derived:
                    touched = True
                    role = fold.output
                    for out_event in derived:
                        emits.append(
                            Emit(role, kafka_key(out_event), encode(out_event), _STRUCTURED)
                        )
                    derived_all.extend(derived)
            if routes:
                headers: Headers | None = None
                for route in routes:
                    route_key = route.key(event)
                    if route_key is not None:
                        if headers is None:
                            headers = [
                                *_STRUCTURED,
                                *origin_of(record.headers),
                                via_header(record.partition),
                            ]
                        emits.append(
                            Emit(route.role, route_key.encode(), record.value, headers, event)
                        )
            if touched:
                if position is not None:
                    state.applied[position.channel] = position.offset
                changed[key] = state
        return out


def _applied(state: KeyRecord, position: Position) -> bool:
    return state.applied.get(position.channel, -1) >= position.offset


def fold_states(
    stored: Mapping[bytes, Mapping[str, Any] | None], name: str
) -> dict[bytes, JsonState]:
    """One fold's states out of a stage table's stored values (key → state), for digests."""
    found: dict[bytes, JsonState] = {}
    for key, value in stored.items():
        state = (value or {}).get("states", {}).get(name)
        if state is not None:
            found[key] = state
    return found


def stage_of(stages: Sequence[KeyedStage], fold_name: str) -> KeyedStage:
    for stage in stages:
        if fold_name in stage.by_name:
            return stage
    raise KeyError(fold_name)

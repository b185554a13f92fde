"""The stream's state, as the MFA service reads it: a view tailed from Kafka, and the gate.

A :class:`StreamView` tails the events, lockouts and anomalies topics with a plain
kafka-python consumer in a background thread (partitions assigned by hand, no consumer
group, nothing committed, from the beginning of each log) and folds each event with
:mod:`verifiers.risk` (pure) into per-subject profiles and the platform's IP blocks, held in
memory. It reads the derived *events*, the contract, not the worker's table changelogs
(their codecs belong to ``streams``, a higher layer). Without Kafka the service has no view.

:func:`enforce` refuses (423) a request whose subject the stream locked or whose IP it
blocked; factor locks reach the verifier's own gate through
:meth:`StreamView.stream_lockouts` (the store's ``stream_lockouts`` hook).
In full, with the staleness measured:
docs/mfa-service.md#how-the-service-reads-the-streams-state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas import Event, EventDecodeError, decode
from schemas.fields import Factor, LockoutScope
from verifiers.kafka_connection import kafka_python_config
from verifiers.lockout import LockoutStatus
from verifiers.risk import (
    EMPTY,
    IpBlocks,
    RiskThresholds,
    SubjectProfile,
    fold_ip_blocks,
    fold_profile,
)
from verifiers.service.config import StreamViewConfig
from verifiers.service.errors import ServiceRefusal
from verifiers.store import Request

log = logging.getLogger(__name__)
LOCKED = 423
IP_EVENTS = ("ip.block.applied", "ip.block.released")
ERASED = "privacy.subject.erased"


@dataclass(frozen=True)
class ViewStatus:
    mode: str
    """``kafka`` (tailing) or ``none`` (no stream state: the embedded default)."""
    caught_up: bool
    events_applied: int
    lag_p50_ms: float | None
    lag_max_ms: float | None


class StreamView:
    """Per-subject profiles and IP blocks folded from the stream's topics (thread-safe)."""

    def __init__(self, thresholds: RiskThresholds) -> None:
        self.thresholds = thresholds
        self._lock = threading.Lock()
        self._profiles: dict[str, SubjectProfile] = {}
        self._blocks = IpBlocks()
        self._applied = 0
        self._lags: deque[float] = deque(maxlen=1024)
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.undecodable = 0
        self._positions: dict[tuple[str, int], int] = {}
        """The next offset to read of each partition (kept across reconnections)."""
        self.on_erased: Callable[[Event], None] | None = None
        """Told each ``privacy.subject.erased`` applied (again on a replay of the log)."""

    # -- folding -------------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> None:
        """Fold ``events`` (in log order per key) into the view; then tell ``on_erased``
        of the erasures among them."""
        erasures: list[Event] = []
        with self._lock:
            for event in events:
                if event.type == ERASED:
                    erasures.append(event)
                if event.type in IP_EVENTS:
                    self._blocks = fold_ip_blocks(self._blocks, event)
                else:
                    key = event.partitionkey
                    before = self._profiles.get(key, EMPTY)
                    after = fold_profile(before, event, self.thresholds)
                    if after is not before:
                        self._profiles[key] = after
                self._applied += 1
        told = self.on_erased
        if told is None:
            return
        for erasure in erasures:
            try:
                told(erasure)
            except Exception:  # the view goes on; `audit erase` itself ends them too
                log.exception("stream view: the erasure of %s was not applied", erasure.subject)

    # -- reading -------------------------------------------------------------------------

    def profile(self, tenant: str, subject: str) -> SubjectProfile:
        with self._lock:
            return self._profiles.get(f"{tenant}/{subject}", EMPTY)

    def ip_blocked_until(
        self, ip: str | None, now: datetime, tenant: str | None = None
    ) -> datetime | None:
        """When the block of ``ip`` in force for a sign-in of ``tenant`` ends, if any."""
        with self._lock:
            return self._blocks.until(ip, now, tenant)

    def status(self) -> ViewStatus:
        with self._lock:
            lags = sorted(self._lags)
            applied = self._applied
        return ViewStatus(
            mode="kafka",
            caught_up=self._caught_up.is_set(),
            events_applied=applied,
            lag_p50_ms=lags[len(lags) // 2] if lags else None,
            lag_max_ms=lags[-1] if lags else None,
        )

    def stream_lockouts(
        self, clock: Callable[[], datetime]
    ) -> Callable[[str, str, Factor | None], LockoutStatus | None]:
        """The verifier store's ``stream_lockouts`` hook: the stream's subject or factor
        lock in force at ``clock()``, else ``None``."""

        def locked(tenant: str, subject: str, factor: Factor | None) -> LockoutStatus | None:
            profile, now = self.profile(tenant, subject), clock()
            lock, scope = profile.subject_lock, LockoutScope.SUBJECT
            if (lock is None or not lock.active(now)) and factor is not None:
                lock, scope = profile.factor_locks.get(factor), LockoutScope.FACTOR
            if lock is None or not lock.active(now):
                return None
            return LockoutStatus(
                locked=True,
                until=lock.until,
                permanent=lock.permanent,
                scope=scope,
                reason=lock.reason,
                factor=factor if scope is LockoutScope.FACTOR else None,
            )

        return locked

    # -- tailing Kafka -------------------------------------------------------------------

    def start(self, config: StreamViewConfig) -> None:
        """Tail ``config``'s topics in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(
            target=self._tail, args=(config,), name="stream-view", daemon=True
        )
        self._thread.start()

    def wait_caught_up(self, timeout: float) -> bool:
        """Whether the view has read every topic to the end it had at start."""
        return self._caught_up.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _tail(self, config: StreamViewConfig) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        while not self._stop.is_set():
            try:
                consumer = KafkaConsumer(
                    **kafka_python_config(config.kafka),
                    enable_auto_commit=False,
                    fetch_max_wait_ms=config.poll_ms,
                )
            except KafkaError as error:
                log.warning("stream view: cannot reach Kafka (%s); retrying", error)
                self._stop.wait(1.0)
                continue
            try:
                assigned: list[TopicPartition] = []
                ends: dict[TopicPartition, int] = {}
                while not self._stop.is_set():
                    found = [
                        TopicPartition(topic, partition)
                        for topic in config.topics
                        for partition in sorted(consumer.partitions_for_topic(topic) or ())
                    ]
                    if found != assigned:
                        new = [tp for tp in found if tp not in assigned]
                        consumer.assign(found)
                        for tp in new:  # from where a lost connection left off, else the start
                            position = self._positions.get((tp.topic, tp.partition))
                            if position is None:
                                consumer.seek_to_beginning(tp)
                            else:
                                consumer.seek(tp, position)
                        if not self._caught_up.is_set():
                            ends = consumer.end_offsets(found)
                        assigned = found
                    self._read(consumer, config.poll_ms, until=time.monotonic() + 5)
                    if not self._caught_up.is_set() and assigned:
                        if all(consumer.position(tp) >= ends.get(tp, 0) for tp in assigned):
                            self._caught_up.set()
            except KafkaError as error:
                log.warning("stream view: %s; reconnecting", error)
                self._stop.wait(1.0)
            except Exception:  # a dead thread would stop enforcing silently: say so, go on
                log.exception("stream view: unexpected failure; reconnecting")
                self._stop.wait(1.0)
            finally:
                consumer.close()

    def _read(self, consumer: object, poll_ms: int, *, until: float) -> None:
        """Poll and apply until ``until`` (then the caller looks for new partitions)."""
        poll = consumer.poll  # type: ignore[attr-defined]
        while not self._stop.is_set() and time.monotonic() < until:
            batch = poll(timeout_ms=poll_ms, max_records=5000)
            events: list[Event] = []
            stamps: list[int] = []
            reached = {}
            for tp, records in batch.items():
                if records:
                    reached[(tp.topic, tp.partition)] = records[-1].offset + 1
                for record in records:
                    try:
                        events.append(decode(record.value, record.headers or []))
                    except EventDecodeError:
                        self.undecodable += 1
                        continue
                    stamps.append(record.timestamp)
            if events:
                self.apply(events)
            self._positions.update(reached)  # once applied: a reconnection reads on from here
            if events:
                now_ms = time.time() * 1000
                with self._lock:
                    self._lags.extend(max(0.0, now_ms - stamp) for stamp in stamps)
            elif not self._caught_up.is_set():
                return  # nothing more: let the caller check whether the view caught up


def enforce(view: StreamView | None, request: Request, *, subject_lock: bool = True) -> None:
    """Refuse (423) a request whose subject the stream locked or whose IP it blocked.

    Every route that acts for a subject calls it (the ceremony builder in ``api.py`` does);
    with no view it does nothing. Factor locks are refused by the verifier's gate through
    :meth:`StreamView.stream_lockouts`, which knows the factor. ``subject_lock=False``: only
    the IP block (a temporary-access code is a way in past the subject's lock)."""
    if view is None:
        return
    ip = request.client.ip if request.client is not None else None
    until = view.ip_blocked_until(ip, request.now, request.tenant)
    if until is not None:
        raise ServiceRefusal(
            LOCKED,
            "ip_blocked",
            "the stream blocked this IP address",
            extra={"locked_until": until.isoformat()},
        )
    if not subject_lock:
        return
    lock = view.profile(request.tenant, request.subject).subject_lock
    if lock is not None and lock.active(request.now):
        extra = {"locked_until": lock.until.isoformat()} if lock.until else {}
        raise ServiceRefusal(
            LOCKED, "locked_out", f"the stream locked the subject ({lock.reason})", extra=extra
        )

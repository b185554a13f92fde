"""Every private part of faust-streaming the worker relies on, in one place, checked at start.

The engine (``streams/engine.py``) and the in-order consumer (``streams/consumer.py``) go
below Faust's public API where its agents cost too much or lose records. Each private part
they use is listed in :data:`PRIVATE_PARTS` and checked by :func:`check_faust` when the
worker starts: a faust-streaming release that renames or drops one fails at start-up with
the list of what is missing, instead of losing records at run time. The version the parts
were read against is :data:`KNOWN_VERSION`; another version is logged as a warning (the
attribute check still decides). The faults in Faust's consumer that made these necessary
are written up in ``docs/faust-consumer-faults.md``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import faust
import faust.streams
import mode
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.stores.base import SerializedStore
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

log = logging.getLogger(__name__)

KNOWN_VERSION: Final = "0.15.3"

PRIVATE_PARTS: Final[tuple[tuple[object, str, str], ...]] = (
    # (owner, attribute, what we use it for)
    (faust.streams, "_current_event", "table context: a table write's partition (engine)"),
    (faust.App, "_new_transport", "the worker's own Kafka consumer class (consumer.py)"),
    (faust_aiokafka.Consumer, "getmany", "batches out of the fetch loop (consumer.py)"),
    (faust_aiokafka.Consumer, "perform_seek", "positions at the end of a rebalance"),
    (faust_aiokafka.Consumer, "seek_wait", "seeks that wait for the position"),
    (faust_aiokafka.Consumer, "earliest_offsets", "start of a never-committed partition"),
    (faust_aiokafka.Consumer, "highwaters", "end of a never-committed partition"),
    (faust_aiokafka.Consumer, "_new_offset", "the offset a commit may take"),
    (faust_aiokafka.Consumer, "force_commit", "flushing the engine's state before commits"),
    (faust_aiokafka.Consumer, "_filter_tps_with_pending_acks", "a commit's offsets, fixed"),
    (faust_aiokafka.Consumer, "_filter_committable_offsets", "while the engine is held"),
    (faust_aiokafka.Consumer, "_handle_attached", "a commit's attached records (as Faust)"),
    (faust_aiokafka.Consumer, "_commit_offsets", "the commit, once the engine goes on"),
    (faust_aiokafka.Consumer, "on_partitions_revoked", "engine quiesce at a rebalance"),
    (faust_aiokafka.Consumer, "on_partitions_assigned", "engine cache reset"),
    (faust_aiokafka.Producer, "_ensure_producer", "the aiokafka producer under Faust's"),
    (faust_aiokafka.Consumer, "_new_consumer_thread", "a consumer thread whose stop completes"),
    (faust_aiokafka.AIOKafkaConsumerThread, "on_thread_stop", "stopping aiokafka's consumer"),
    (
        faust_aiokafka.AIOKafkaConsumerThread,
        "_create_worker_consumer",
        "the consumer, its fetch's wait set before it starts (set_fetch_max_wait)",
    ),
    (SerializedStore, "apply_changelog_batch", "the engine's own changelog records applied"),
    (Recovery, "active_remaining_total", "the stall watch: a recovery that reads on"),
    (Recovery, "in_recovery", "the stall watch's report of a rebalance without progress"),
    (GroupCoordinator, "request_rejoin", "the stall watch's last repair (aiokafka)"),
    (mode.Worker, "_on_sigterm", "SIGHUP stops the worker as SIGTERM does (cli/worker.py)"),
)
PRIVATE_INSTANCE_PARTS: Final = (
    "_read_offset",  # the fetch loop's last offset per partition (kept in step)
    "_committed_offset",
    "_acked",
    "_acked_index",
    "_gap",
    "_active_partitions",  # the stall watch's report: what Faust fetches for the engine
    "_paused_partitions",
    "_buffered_partitions",
)
"""Consumer instance attributes (set in its ``__init__``), checked on the live consumer."""


class FaustChanged(RuntimeError):
    """faust-streaming lacks a private part the worker relies on."""


def check_faust() -> list[str]:
    """Raise :class:`FaustChanged` naming every missing private part; return warnings."""
    missing = [
        f"{getattr(owner, '__name__', owner)}.{name} ({why})"
        for owner, name, why in PRIVATE_PARTS
        if not hasattr(owner, name)
    ]
    if missing:
        raise FaustChanged(
            f"faust-streaming {faust.__version__} lacks what the worker relies on: "
            + "; ".join(missing)
            + f". The worker was built against {KNOWN_VERSION} (streams/faust_fence.py)."
        )
    if faust.__version__ != KNOWN_VERSION:
        return [
            f"faust-streaming {faust.__version__} is not {KNOWN_VERSION}, which "
            "streams/faust_fence.py was checked against; its private parts are present"
        ]
    return []


def check_consumer(consumer: object) -> None:
    """The live consumer has the instance attributes the in-order consumer keeps in step."""
    missing = [name for name in PRIVATE_INSTANCE_PARTS if not hasattr(consumer, name)]
    if missing:
        raise FaustChanged(
            f"faust-streaming {faust.__version__}: the consumer lacks {', '.join(missing)}"
            " (streams/faust_fence.py)"
        )


def set_fetch_max_wait(consumer: Any, wait_ms: int) -> None:
    """How long the broker may hold a fetch of aiokafka's ``consumer`` (not yet started)
    while none of its partitions has new records: Faust creates it with a fixed 1,500 ms,
    and aiokafka hands its ``_fetch_max_wait_ms`` to the fetcher it creates at start."""
    if not hasattr(consumer, "_fetch_max_wait_ms"):
        raise FaustChanged(
            f"aiokafka's consumer lacks _fetch_max_wait_ms ({type(consumer).__module__}): "
            "the fetch's wait cannot be set (streams/faust_fence.py)"
        )
    consumer._fetch_max_wait_ms = wait_ms


def aiokafka_producer(app: faust.App) -> Any:
    """The aiokafka ``AIOKafkaProducer`` Faust's producer runs (its settings: acks,
    idempotence, connections), for sending whole record batches (``streams/produce.py``)."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _ChangelogRecord:
    tp: TP
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class _Change:
    key: Any
    value: Any
    message: _ChangelogRecord


def _same(value: Any) -> Any:
    return value


def store_apply(
    store: Any, changes: Iterable[tuple[TP, int, bytes | None, Any, bytes | None]]
) -> None:
    """Apply changelog records the engine produced itself ``(changelog partition, offset,
    key, value, encoded value)`` to a table's local store, as Faust's recovery applies what
    it reads back (``Store.apply_changelog_batch``: RocksDB gets one write batch per
    partition and remembers the offset it holds; the memory store takes the values). The
    records only need the attributes those stores read."""
    store.apply_changelog_batch(
        [
            _Change(key, value, _ChangelogRecord(tp, tp.partition, offset, key, encoded))
            for tp, offset, key, value, encoded in changes
        ],
        to_key=_same,
        to_value=_same,
    )


_MESSAGES: dict[tuple[str, int], faust.Event] = {}


@contextmanager
def table_context(app: faust.App, topic: str, partition: int) -> Iterator[None]:
    """Table reads and writes inside the block go to ``partition`` of each table.

    Faust takes a table write's partition (its local store and its changelog partition)
    from the event the current agent is processing (``faust.streams._current_event``); the
    engine processes batches outside any agent, so it names the partition with a stand-in
    event of ``topic`` (the table's source topic, whose partition count Faust checks).
    """
    event = _MESSAGES.get((topic, partition))
    if event is None or event.app is not app:
        message = Message(
            topic, partition, -1, 0.0, 0, None, None, None, None, tp=TP(topic, partition)
        )
        event = _MESSAGES[(topic, partition)] = faust.Event(app, None, None, None, message)
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)

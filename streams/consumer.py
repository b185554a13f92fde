"""The worker's Kafka consumer: Faust's aiokafka consumer, delivering without holes.

See ``streams/delivery.py`` for why and for the decisions. This module keeps, per
partition of an acknowledged topic (the agents' sources; not the table changelogs, which
Faust reads itself and which compaction leaves with holes), the offset due next:

* none from the moment the partition is revoked or assigned until the seek that ends the
  rebalance (records fetched meanwhile are held back: the seek reads them again);
* at that seek, the committed offset, or for a partition the group never committed the
  start of its log (``auto_offset_reset=earliest``; its end for ``latest``), and every
  partition is sought there explicitly, wherever an earlier fetch left it;
* after each delivered record, its offset + 1.

Faust's own bookkeeping is kept in step, so that it neither drops nor commits over a
record this consumer delivers: the last offset its fetch loop handed over is set to each
record's offset as it is delivered, a real hole in the log is recorded as a gap of
exactly the missing offsets, and a commit waits while the record at the committed offset
is not acknowledged (Faust would take ``committed + 1`` for it). Before a partition's first
commit the offset it was sought to stands for the committed one (Faust checks nothing
there, and would commit over a lost first record). A commit held that way for
:data:`HELD_COMMITS_BEFORE_WARNING` commits in a row is logged as a warning, again at each
further such run: the partition's lag grows, and a restart reads from that offset again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import faust
from faust import transport
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import ConsumerT, TransportT
from mode import Service

from streams.delivery import (
    Action,
    Probe,
    Repair,
    StallWatch,
    Unread,
    next_action,
    read_again_from,
    repair_for,
    unread,
)
from streams.engine import Engine, EngineFailed
from streams.faust_fence import set_fetch_max_wait
from streams.noise import RepeatLimit
from streams.watchdog import LoopWatchdog

log = logging.getLogger(__name__)
watch_errors = logging.getLogger(f"{__name__}.watch")
watch_errors.addFilter(RepeatLimit())  # with its broker gone, the watch fails every round

HELD_COMMITS_BEFORE_WARNING = 20
"""Commits in a row held at one offset before the consumer warns about it."""


@dataclass(frozen=True)
class FetchState:
    """What Faust and the Kafka client know of one partition's fetching: for the stall
    watch (``position``, ``buffered``) and, in full, for its warning (``detail``)."""

    position: int | None
    buffered: bool
    detail: str


class InOrderConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose ``getmany`` never yields past a missing record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._due: dict[TP, int] = {}
        self._probes: dict[TP, Probe] = {}
        self._sought: dict[TP, int] = {}  # partitions never committed: where reading began
        self._held: dict[TP, tuple[int, int]] = {}  # offset a commit waits at, commits held
        self._watch: StallWatch | None = None
        self._settling = StallWatch(0)  # the rebalance under way, if any (see heal)
        self._assigned = False  # partitions assigned since the last revoke (see _settle)
        self._unread: dict[TP, int] = {}  # times in a row a partition was found left unread
        self._ends_in_markers: dict[TP, tuple[int, int]] = {}  # (due, end) of such a log
        self.read_again = 0
        """Partitions read again by :meth:`heal` (each one a record lost on its way in)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return StoppingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _guarded(self, tp: TP) -> bool:
        return bool(self.app.topics.acks_enabled_for(tp.topic))

    def _forget(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self._due.pop(tp, None)
            self._probes.pop(tp, None)
            self._sought.pop(tp, None)
            self._held.pop(tp, None)
            self._unread.pop(tp, None)
            self._ends_in_markers.pop(tp, None)

    @property
    def _engine(self) -> Engine | None:
        engine: Engine | None = getattr(self.app, "engine", None)
        return engine

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._forget(revoked)  # before any await: no record of theirs is delivered now
        self._assigned = False
        engine = self._engine
        if engine is not None:
            await engine.revoke()  # drop fetched batches, let the one in flight finish
            with contextlib.suppress(EngineFailed):  # then nothing is written
                await engine.flush()  # the state of everything processed, before Faust commits
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._forget(assigned)
        self._assigned = True
        engine = self._engine
        if engine is not None:
            engine.assigned()  # another worker may have changed any key since
        await super().on_partitions_assigned(assigned, generation_id)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Faust's commit (``Consumer.force_commit``), after the engine wrote the state of
        every batch it processed, whose produced records are durable already
        (``streams/engine.py``). The offsets to commit are fixed while the runners are held
        still, just after that write: the batches acknowledged so far, whose state is
        written. The runners go on while the broker takes the commit (tens of ms here): a
        batch acknowledged meanwhile is committed next time."""
        engine = self._engine
        if engine is None:
            done: bool = await super().force_commit(
                topics, start_new_transaction=start_new_transaction
            )
            return done
        try:
            async with engine.committing():
                sensor_state = self.app.sensors.on_commit_initiated(self)
                tps = list(self._filter_tps_with_pending_acks(topics))
                offsets = self._filter_committable_offsets(tps)
        except EngineFailed as error:
            log.warning("commit skipped: %s", error)
            return False
        done = False
        if offsets:
            try:
                await self._handle_attached(offsets)  # (as Faust: records sent on commit)
            except ProducerSendError as error:
                await self.crash(error)
            else:
                done = await self._commit_offsets(
                    offsets, start_new_transaction=start_new_transaction
                )
        self.app.sensors.on_commit_completed(self, sensor_state)
        return done

    async def perform_seek(self) -> None:
        await super().perform_seek()  # sets _read_offset to the committed offsets
        assigned = [tp for tp in self.assignment() if self._guarded(tp)]
        due = {tp: offset for tp in assigned if (offset := self._read_offset.get(tp)) is not None}
        never_committed = [tp for tp in assigned if tp not in due]
        if never_committed:
            if self.app.conf.consumer_auto_offset_reset == "earliest":
                due.update(await self.earliest_offsets(*never_committed))
            else:
                due.update(await self.highwaters(*never_committed))
        # in place, and before the seek: records fetched from the new position can reach
        # getmany (which holds this dict) before seek_wait returns; held back there as not
        # yet positioned, they were dropped after the client's position had moved past
        # them, and the end of a burst was never read (seen in CI with two workers)
        self._due.clear()
        self._due.update(due)
        self._probes.clear()
        self._sought.clear()
        self._sought.update({tp: due[tp] for tp in never_committed if tp in due})
        if due:
            await self.seek_wait(due)  # aiokafka's seek to committed skips offset 0

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._due[partition] = offset

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit, but never past an unacknowledged ``committed``
        (before the first commit: the offset the partition was sought to)."""
        committed = self._committed_offset[tp]
        if committed is None:
            committed = self._sought.get(tp)
        acked = self._acked[tp]
        if committed is not None and acked and self._guarded(tp):
            gap = self._gap.get(tp)
            lowest = min(min(acked), gap.begin()) if gap else min(acked)
            if lowest > committed:
                self._hold(tp, committed)
                return None
        self._held.pop(tp, None)
        result: int | None = super()._new_offset(tp)
        return result

    def committed_or_sought(self, tp: TP) -> int | None:
        """The partition's committed offset (before the first commit: where reading
        began); ``None``: not known yet."""
        committed: int | None = self._committed_offset[tp]
        return self._sought.get(tp) if committed is None else committed

    def held_commits(self) -> dict[TP, tuple[int, int]]:
        """Partitions whose commit is held: the offset it waits at, commits held in a row."""
        return dict(self._held)

    def _hold(self, tp: TP, offset: int) -> None:
        held_at, times = self._held.get(tp, (offset, 0))
        times = times + 1 if held_at == offset else 1
        self._held[tp] = (offset, times)
        if times % HELD_COMMITS_BEFORE_WARNING == 0:
            log.warning(
                "%s[%d]: commit held at offset %d for %d commits: that record was never "
                "acknowledged; a restart or rebalance reads from it again",
                tp.topic, tp.partition, offset, times
            )  # fmt: skip

    @Service.task
    async def _watch_for_stalls(self) -> None:
        """:meth:`heal`, every few seconds while the consumer runs: from its start, not from
        the end of the first recovery, as an app's timers do (a worker whose first recovery
        never ends would never be repaired)."""
        after_s: float | None = getattr(self.app, "stall_s", None)
        if after_s is None:
            return
        watchdog = LoopWatchdog.start(after_s=max(5.0, after_s / 3))  # heal runs on the loop
        try:
            while not self.should_stop:
                await self.sleep(min(5.0, after_s / 2))
                try:
                    await self.heal(after_s=after_s)
                except Exception as error:  # noqa: BLE001 - a rebalance may move a partition
                    watch_errors.warning("stall watch: %r; trying again at the next round", error)
        finally:
            watchdog.stop()

    async def heal(self, *, after_s: float) -> None:
        """Repair, once it has stayed so for ``after_s`` seconds, what keeps records from
        the engine, each repair logged as a warning with what the consumer knew:

        * with the engine idle and no rebalance under way, a partition whose records were
          fetched but never reached the engine, or never positioned
          (:func:`streams.delivery.read_again_from`): read again from the record the
          commit waits at (records the engine applied already are skipped by position);
        * likewise, a partition whose records wait in the log unread
          (:meth:`_read_what_waits`);
        * a rebalance that makes no progress (:meth:`_settle`).

        A runner stuck on one batch is reported with where it waits. The consumer calls
        this every few seconds (:meth:`_watch_for_stalls`)."""
        engine = self._engine
        if self._watch is None or self._watch.after_s != after_s:
            self._watch = StallWatch(after_s)
            self._settling = StallWatch(after_s)
        watch = self._watch
        now = time.monotonic()
        if engine is not None:
            for report in engine.stuck(now, after_s):
                log.warning("engine stalled: %s", report)
        settling = self.app.rebalancing or not self.flow_active
        await self._settle(settling, now)
        if engine is None or settling or not engine.idle:
            watch.clear()
            return
        again: dict[TP, int] = {}
        unpositioned: list[TP] = []
        positioned: dict[TP, int] = {}  # partitions fine so far, and their offsets due
        for tp in self.assignment():
            if not (self._guarded(tp) and engine.wants(tp.topic)):
                continue
            due = self._due.get(tp)
            start = self._committed_offset.get(tp)
            if start is None:
                start = self._sought.get(tp)
            acked = start is not None and start in self._acked_index.get(tp, ())
            offset = read_again_from(due, start, acked)
            wrong = offset is not None or (due is None and start is None)
            if not wrong and due is not None:
                positioned[tp] = due
            if not watch.stuck(tp, (due, start), wrong, now):
                continue
            log.warning(
                "%s[%d]: stalled for %.0f s with nothing in flight (offset due %s, commit "
                "from %s, not acknowledged, epoch %d): reading again from %s",
                tp.topic, tp.partition, after_s, due, start, engine.epoch,
                "the start of the log" if offset is None else offset,
            )  # fmt: skip
            watch.clear(tp)
            if offset is None:
                unpositioned.append(tp)
            else:
                again[tp] = offset
        if unpositioned:
            if self.app.conf.consumer_auto_offset_reset == "earliest":
                found = await self.earliest_offsets(*unpositioned)
            else:
                found = await self.highwaters(*unpositioned)
            again.update(found)
            self._sought.update({tp: found[tp] for tp in unpositioned if tp in found})
        if again:
            for tp, offset in again.items():
                self._due[tp] = offset
                self._probes.pop(tp, None)
            self.read_again += len(again)
            await self.seek_wait(again)
        if positioned:
            await self._read_what_waits(positioned, watch, now)

    async def _read_what_waits(self, due: dict[TP, int], watch: StallWatch, now: float) -> None:
        """Partitions whose records wait in the log while none of them arrives
        (:func:`streams.delivery.unread`) for ``after_s`` seconds with the offset due
        unchanged: the last records of a burst fetched and dropped before they reached
        this consumer (as Faust's ``getmany`` does at a rebalance, and as this consumer's
        own hold-back did until the offsets due were set before the seek), with no later
        record to show the gap; or a fetch that never returns. Each is logged with what
        Faust and the Kafka client knew of it, and repaired
        (:func:`streams.delivery.repair_for`): fetching resumed and a read from the offset
        due; if it stays unread, a rejoin of the group (or, read past again, the log ends
        in transaction markers: nothing is missing)."""
        ends = await self.highwaters(*due)
        resume: dict[TP, int] = {}
        rejoin = False
        for tp, offset in due.items():
            end = ends.get(tp)
            fetch = self._fetch_state(tp)
            why = unread(offset, end, fetch.position, fetch.buffered)
            key = ("unread", tp)
            if why is Unread.NONE or self._ends_in_markers.get(tp) == (offset, end):
                self._unread.pop(tp, None)
                watch.clear(key)
                continue
            if not watch.stuck(key, offset, True, now):
                continue
            watch.clear(key)
            times = self._unread[tp] = self._unread.get(tp, 0) + 1
            repair = repair_for(times, why)
            if repair is Repair.NONE and end is not None:
                self._ends_in_markers[tp] = (offset, end)
                log.info(
                    "%s[%d]: offsets %d..%d hold no record (transaction markers)",
                    tp.topic, tp.partition, offset, end - 1,
                )  # fmt: skip
                continue
            log.warning(
                "%s[%d]: stalled for %.0f s: the log ends at %s, offset %d is due and none "
                "arrives: %s (%s); found so %d time(s) in a row: %s",
                tp.topic, tp.partition, watch.after_s, end, offset, why.value, fetch.detail,
                times, repair.value,
            )  # fmt: skip
            if repair is Repair.RESUME:
                resume[tp] = offset
            else:
                rejoin = True
        if resume:
            self.resume_partitions(list(resume))
            for tp in resume:
                self._probes.pop(tp, None)
            await self.seek_wait(resume)
        if rejoin:
            await self._thread.call_thread(self._request_rejoin)

    async def _settle(self, settling: bool, now: float) -> None:
        """A rebalance (or a stopped flow) with no progress for ``after_s`` seconds once
        the partitions are assigned: none in the consumer generation nor in the changelog
        records left to recover (a long recovery that reads on is progress). It is logged
        with the recovery's state, and the group rejoined: a new generation starts the
        rebalance and recovery anew. Joining the group is not counted: the coordinator may
        rightly wait for a slow member, and a rejoin would not hasten it."""
        watch = self._settling
        settling = settling and self._assigned
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        left = recovery.active_remaining_total() if settling else 0
        state = (self.app.consumer_generation_id, left)
        if not watch.stuck("settling", state, settling, now):
            return
        watch.restart("settling", state, now)
        log.warning(
            "stalled for %.0f s in a rebalance: generation %d, rebalancing %s, flow active "
            "%s, in recovery %s, recovery completed %s, %d changelog records left to read; "
            "%s",
            watch.after_s, self.app.consumer_generation_id, self.app.rebalancing,
            self.flow_active, recovery.in_recovery, recovery.completed.is_set(), left,
            Repair.REJOIN.value,
        )  # fmt: skip
        await self._thread.call_thread(self._request_rejoin)

    async def _request_rejoin(self) -> None:
        """In the consumer thread: ask the group coordinator to rebalance."""
        client = self._thread._consumer
        if client is not None:
            client._coordinator.request_rejoin()

    def _fetch_state(self, tp: TP) -> FetchState:
        """What Faust and the Kafka client know of ``tp``'s fetching, read from the consumer
        thread's objects without a lock: a diagnostic, wrong at worst for one round."""
        active = self._active_partitions
        faust = ", ".join(
            word
            for word, found in (
                ("active", active is not None and tp in active),
                ("paused", tp in self._paused_partitions),
                ("buffer full", tp in self._buffered_partitions),
            )
            if found
        )
        detail = [f"Faust: {faust or 'neither active nor paused'}, flow active {self.flow_active}"]
        client = getattr(self._thread, "_consumer", None)
        if client is None:
            return FetchState(None, False, "; ".join([*detail, "no Kafka client"]))
        position: int | None = None
        buffered = False
        try:
            fetcher = client._fetcher
            buffered = tp in fetcher._records
            subscription = client._subscription
            assignment = subscription.subscription.assignment if subscription.subscription else None
            state = assignment.state_value(tp) if assignment is not None else None
            if state is not None and state.has_valid_position:
                position = state.position
            detail.append(
                f"Kafka client: assigned {state is not None}, status "
                f"{getattr(state, '_status', None)}, position {position}, paused "
                f"{getattr(state, 'paused', None)}, records held {buffered}, fetches in flight "
                f"to nodes {sorted(fetcher._in_flight)}, {len(fetcher._pending_tasks)} fetch "
                f"tasks, fetch loop done {fetcher._fetch_task.done()}, reassigning "
                f"{subscription.reassignment_in_progress}"
            )
        except Exception as error:  # noqa: BLE001 - the client's internals may change
            detail.append(f"Kafka client unreadable: {error!r}")
        return FetchState(position, buffered, "; ".join(detail))

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        engine = self._engine
        epoch: int | None = None  # the engine's epoch once records came back (see below)
        batches: dict[TP, list[Message]] = {}  # the engine's records, a batch per partition
        # per partition seen in this fetch: its batch (the engine's topics) or None (agents')
        batch_of: dict[TP, list[Message] | None] = {}
        rewound: set[TP] = set()
        due = self._due
        async for tp, message in super().getmany(timeout):
            if epoch is None and engine is not None:
                # now, not before the fetch: a rebalance while it waited has reset every
                # position (the records below are checked against them), and a batch
                # tagged with the epoch from before it would be dropped after its offsets
                # were taken as delivered: lost until the next rebalance
                epoch = engine.epoch
            offset = message.offset
            if tp in batch_of and due.get(tp) == offset and tp not in rewound:
                due[tp] = offset + 1  # the usual case, in short: the offset due, delivered
                self._read_offset[tp] = offset
                batch = batch_of[tp]
                if batch is None:
                    yield tp, message
                else:
                    batch.append(message)
                continue
            if tp in rewound:
                continue  # to be read again from the offset due
            if not self._guarded(tp):
                yield tp, message
                continue
            if tp not in batch_of:
                wanted = engine is not None and engine.wants(tp.topic)
                batch_of[tp] = batches.setdefault(tp, []) if wanted else None
            expected = due.get(tp)
            step = next_action(expected, message.offset, self._probes.get(tp))
            if step is Action.DELIVER and expected is not None:
                if message.offset != expected:
                    log.warning(
                        "%s[%d]: offsets %d..%d are not in the log; going on at %d",
                        tp.topic, tp.partition, expected, message.offset - 1, message.offset
                    )  # fmt: skip
                    self._gap[tp].addi(expected, message.offset)  # exactly the missing ones
                    self._gap[tp].merge_overlaps()
                self._due[tp] = message.offset + 1
                self._probes.pop(tp, None)
                # Faust's fetch loop drops a record below the last offset it handed over,
                # which a seek racing a hand-over can leave too high: this one is due.
                self._read_offset[tp] = message.offset
                found = batch_of[tp]
                if found is None:
                    yield tp, message
                else:
                    found.append(message)
            elif step is Action.DROP:
                log.info(
                    "%s[%d]: dropped offset %d, read already (%d is due)",
                    tp.topic, tp.partition, message.offset, expected
                )  # fmt: skip
            elif step is Action.REWIND and expected is not None:
                log.info(  # after each rebalance, as Faust drops the batch it had fetched
                    "%s[%d]: read offset %d while %d is due; seeking back to %d",
                    tp.topic, tp.partition, message.offset, expected, expected
                )  # fmt: skip
                self._probes[tp] = Probe(expected, message.offset)
                rewound.add(tp)
                await self.seek_wait({tp: expected})
            # Action.HOLD: assigned and not yet sought; the seek reads it again
        batches = {tp: found for tp, found in batches.items() if found}
        if engine is not None and epoch is not None and batches:
            await engine.dispatch(epoch, batches)


class StoppingConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose stop always completes, and whose fetches the broker
    holds for ``App.fetch_max_wait_ms`` at most.

    With its broker gone, aiokafka's ``consumer.stop()`` ends in ``CancelledError`` (closing
    the fetcher awaits its own fetch task, cancelled while it backed off); the thread then
    never said it had stopped, and the worker waited mode's shutdown timeout, a full
    minute, on SIGTERM.

    Faust fixes the fetch's wait at 1,500 ms. aiokafka sends a broker one fetch at a time,
    for the partitions it has nothing buffered of; a busy partition drained while that
    fetch waits for records of quiet ones (the worker's own re-keyed topics, between two
    batches) waits as long: measured, a worker's runners sat idle a third of a 200,000-event
    backlog this way (docs/faust-consumer-faults.md)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms: int | None = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            set_fetch_max_wait(consumer, wait_ms)
        return consumer

    async def on_thread_stop(self) -> None:
        try:
            await super().on_thread_stop()
        except (asyncio.CancelledError, Exception) as error:  # noqa: BLE001 - stopping anyway
            log.warning("the Kafka consumer stopped uncleanly (%r); going on", error)


class InOrderTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = InOrderConsumer


class App(faust.App):
    """``faust.App`` whose Kafka consumer delivers each partition in order, without holes,
    and hands the records of the engine's topics to it a batch at a time."""

    engine: Engine | None = None
    stall_s: float | None = None
    """How long the consumer lets a stall last before it repairs it (None: never)."""
    fetch_max_wait_ms: int | None = None
    """How long the broker may hold a fetch with no new records (None: Faust's 1,500 ms)."""

    def _new_transport(self) -> TransportT:
        if transport.by_url(self.conf.broker_consumer[0]) is faust_aiokafka.Transport:
            return InOrderTransport(self.conf.broker_consumer, self)
        return super()._new_transport()

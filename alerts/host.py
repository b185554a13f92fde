"""The alerts process: per destination, a Kafka consumer group over the derived topics.

Each destination reads the lockouts and anomalies topics in consumer group
``<group_prefix>-<destination>`` (a receiver that is down holds back only its own
alerts), a fetch at a time::

    decode -> alert_of -> routed_to(destination) -> fold (grouping) -> tick(now)
           -> deliver each alert (retries, backoff) | dead-letter it after give_up_after_s
           -> transport.confirm() -> commit, no further than the open groups' holds

Nothing is committed before every alert of the fetch was taken or dead-lettered, so a
crash or a stop re-reads it; the open groups hold their partitions' commits at their
first event, so a restart rebuilds them from the log. After a rebalance the grouping
state starts empty (the new assignment starts from the committed offsets, which is where
the open groups began).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas.extras import require_extra

require_extra("alerts.host")

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from alerts.config import AlertsConfig, Destination
from alerts.delivery import Stopped, deliver
from alerts.formats import alert_document, json_bytes
from alerts.grouping import EMPTY, Arrival, GroupingState, fold, holds, tick
from alerts.model import Alert, alert_of
from alerts.routes import routed_to
from alerts.transports import SendResult, Transport, transport_for
from schemas import EventDecodeError, decode

if TYPE_CHECKING:
    from alerts.metrics import AlertMetrics

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
DeadLetter = Callable[[Alert, Destination, SendResult, int], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Reset(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, pipe: DestinationPipe) -> None:
        self.pipe = pipe

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing: a fetch is committed (or not) before the next poll."""

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.pipe.reset()


class DestinationPipe:
    """One destination's consumer loop."""

    def __init__(
        self,
        config: AlertsConfig,
        destination: Destination,
        *,
        consumer_config: Mapping[str, Any],
        dead_letter: DeadLetter,
        transport: Transport | None = None,
        clock: Clock = _utc_now,
        max_records: int = 500,
        metrics: AlertMetrics | None = None,
    ) -> None:
        self.config, self.destination = config, destination
        self.consumer_config, self.dead_letter = consumer_config, dead_letter
        self.transport = transport or transport_for(destination)
        self.clock, self.max_records = clock, max_records
        self.group = f"{config.group_prefix}-{destination.name}"
        self.state: GroupingState = EMPTY
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.sent = 0
        self.dead_lettered = 0
        self.generation = 0
        self.metrics = metrics

    def reset(self) -> None:
        """After a new assignment: start afresh from the committed offsets."""
        self.state, self.positions, self.committed = EMPTY, {}, {}
        self.generation += 1

    async def run(self, stop: asyncio.Event) -> None:
        retry = self.config.retry
        consumer = AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # a fetch may wait give_up_after_s for its receiver: stay in the group meanwhile
            max_poll_interval_ms=int((retry.give_up_after_s + 300) * 1000),
            **self.consumer_config,
        )
        consumer.subscribe(list(self.config.topics), listener=_Reset(self))
        await consumer.start()
        log.info("alerts %s: reading %s", self.group, ", ".join(self.config.topics))
        try:
            while not stop.is_set():
                try:
                    fetched = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                except KafkaError as error:
                    log.warning("alerts %s: fetch failed (%r); trying again", self.group, error)
                    await asyncio.sleep(1)
                    continue
                try:
                    await self._handle(fetched, stop)
                except Stopped:
                    log.info("alerts %s: stopped mid-fetch; it is read again", self.group)
                    break
                await self._commit(consumer)
        finally:
            self.transport.close()
            await consumer.stop()

    def arrivals(self, fetched: Mapping[TopicPartition, list[Any]]) -> list[Arrival]:
        out: list[Arrival] = []
        for tp, records in fetched.items():
            for record in records:
                self.positions[tp] = record.offset + 1
                if not record.value:
                    continue
                try:
                    event = decode(record.value, record.headers)
                except EventDecodeError as error:  # only the pipeline writes these topics
                    log.error("alerts %s: skipping an undecodable record: %s", self.group, error)
                    continue
                alert = alert_of(event, self.config.grouping)
                if alert is not None and routed_to(alert, self.destination.name, self.config):
                    out.append(Arrival(alert, (tp.topic, tp.partition), record.offset))
        return sorted(out, key=lambda arrival: arrival.alert.time)

    async def _handle(
        self, fetched: Mapping[TopicPartition, list[Any]], stop: asyncio.Event
    ) -> None:
        grouping, generation = self.config.grouping, self.generation
        state, now_due = fold(self.state, self.arrivals(fetched), grouping)
        state, closed = tick(state, self.clock(), grouping)
        for alert in [*now_due, *closed]:
            key = alert.dedup_key(self.destination.name)
            started = time.monotonic()
            result = await deliver(self.transport, alert, key, self.config.retry, stop=stop)
            if self.metrics is not None:
                self.metrics.handled(
                    self.destination.name,
                    delivered=result.outcome.delivered,
                    reason=result.outcome.reason,
                    attempts=result.attempts,
                    seconds=time.monotonic() - started,
                )
            if result.outcome.delivered:
                self.sent += 1
                continue
            log.error(
                "alerts %s: %s undelivered after %d attempts (%s): dead-lettered",
                self.group,
                alert.id,
                result.attempts,
                result.outcome.reason,
            )
            await self.dead_letter(alert, self.destination, result.outcome, result.attempts)
            self.dead_lettered += 1
        await self._confirm(stop)
        if generation == self.generation:  # else a rebalance came meanwhile: the log again
            self.state = state

    async def _confirm(self, stop: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self.transport.confirm()
                return
            except ConnectionError as error:
                attempt += 1
                delay = self.config.retry.delay(attempt)
                log.warning(
                    "alerts %s: could not confirm (%s); again in %.1f s", self.group, error, delay
                )
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    raise Stopped
                except TimeoutError:
                    pass

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        held = holds(self.state)
        offsets = {}
        for tp, position in self.positions.items():
            target = min(position, held.get((tp.topic, tp.partition), position))
            if self.committed.get(tp) != target:
                offsets[tp] = target
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
            self.committed.update(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            log.info("alerts %s: commit refused at a rebalance (%s); read again", self.group, error)
        except KafkaError as error:  # the broker away: committed at the next round
            log.warning("alerts %s: commit failed (%r); trying again", self.group, error)


def kafka_dead_letter(producer: AIOKafkaProducer, topic: str, stop: asyncio.Event) -> DeadLetter:
    """Dead-letter to ``topic``: key = the dedup key, value = the alert document, headers
    saying where it was going and why it did not get there. Retried until the broker has
    it (the fetch is not committed before)."""

    async def send(
        alert: Alert, destination: Destination, outcome: SendResult, attempts: int
    ) -> None:
        key = alert.dedup_key(destination.name)
        value = json_bytes(
            {
                "destination": destination.name,
                "reason": outcome.reason,
                "attempts": attempts,
                "alert": alert_document(alert, key),
            }
        )
        headers = [
            ("factorstream.alerts.destination", destination.name.encode()),
            ("factorstream.alerts.reason", outcome.reason.encode()),
            ("factorstream.alerts.attempts", str(attempts).encode()),
        ]
        while True:
            try:
                await producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
                return
            except KafkaError as error:
                log.warning("alerts: dead-letter topic %s unavailable (%r)", topic, error)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=2)
                    raise Stopped from error
                except TimeoutError:
                    pass

    return send


async def run_alerts(
    config: AlertsConfig,
    *,
    consumer_config: Mapping[str, Any],
    producer_config: Mapping[str, Any],
    stop: asyncio.Event,
    only: tuple[str, ...] = (),
    metrics: AlertMetrics | None = None,
) -> list[DestinationPipe]:
    """Every destination's loop (``only``: those) until ``stop`` is set; ``metrics``:
    where each delivery is counted (``alerts/metrics.py``)."""
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **producer_config)
    await producer.start()
    try:
        dead_letter = kafka_dead_letter(producer, config.dead_letter_topic, stop)
        pipes = [
            DestinationPipe(
                config,
                d,
                consumer_config=consumer_config,
                dead_letter=dead_letter,
                metrics=metrics,
            )
            for d in config.destinations
            if not only or d.name in only
        ]
        await asyncio.gather(*(pipe.run(stop) for pipe in pipes))
        return pipes
    finally:
        await producer.stop()

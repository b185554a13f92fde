"""Producing a batch of records at once: one Kafka record batch per partition.

Faust's ``Producer.send`` costs a coroutine, a future and bookkeeping per record, and a
table write (``table[key] = value``) goes through Faust's producer buffer, which sends
its records one by one from a background task: at thousands of changed keys per commit
that took seconds, all runners held still. The engine instead groups its records by topic
partition (partitioned exactly as the producer would: aiokafka's murmur2
``DefaultPartitioner`` on the key bytes, the partitioner Faust's producer and its table
router use), fills one aiokafka ``BatchBuilder`` per partition and sends each batch
whole, on the very producer Faust runs (``streams/faust_fence.py``: its ``acks``,
idempotence and connection). :meth:`BatchProducer.send` returns once the broker has them
all, with where each one was written; :meth:`BatchProducer.enqueue` returns as soon as
they are handed over, with a future for that.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from streams.faust_fence import aiokafka_producer

Headers = Sequence[tuple[str, bytes | None]]
Placed = list[tuple[str, int, int]]
"""Where each record of a send was written: topic, partition, offset."""


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` a keyed record goes to: murmur2 of the key bytes,
    as aiokafka's ``DefaultPartitioner`` (and Kafka's Java client, kafka-python, Faust's
    table router) place it. aiokafka's murmur2 is pure Python, several microseconds a key,
    and the engine asks for each event's subject key more than once: the recent keys are
    remembered."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce; ``partition`` ``None``: by its key, as the producer would."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class BatchProducer:
    """Sends records a partition batch at a time on the app's own producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._partitions: dict[str, list[int]] = {}
        self.records = 0
        self.batches = 0

    async def _partitions_of(self, producer: Any, topic: str) -> list[int]:
        found = self._partitions.get(topic)
        if found is None:
            found = self._partitions[topic] = sorted(await producer.partitions_for(topic))
        return found

    async def send(self, records: Iterable[Outgoing]) -> list[tuple[str, int, int]]:
        """Produce ``records`` (each partition's in the order given) and wait until the
        broker acknowledged all of them; each record's topic, partition and offset, in the
        order given."""
        return await (await self.enqueue(records))

    async def enqueue(self, records: Iterable[Outgoing]) -> asyncio.Future[Placed]:
        """Hand ``records`` to the producer (each partition's in the order given, after
        those of every earlier call: aiokafka keeps a partition's batches in order and
        sends a broker one request at a time) and return at once: the future is done when
        the broker acknowledged all of them, with each record's topic, partition and
        offset in the order given, or failed with the first error."""
        producer = aiokafka_producer(self.app)
        listed = list(records)
        groups: dict[tuple[str, int], list[int]] = {}
        for index, record in enumerate(listed):
            partition = record.partition
            if partition is None:
                partitions = await self._partitions_of(producer, record.topic)
                partition = partitions[
                    random.randrange(len(partitions))  # noqa: S311 - spreading, not secrets
                    if record.key is None
                    else partition_for(record.key, len(partitions))
                ]
            groups.setdefault((record.topic, partition), []).append(index)
        pending: list[tuple[str, int, list[int], asyncio.Future[Any]]] = []
        for (topic, partition), indexes in groups.items():
            batch, taken = producer.create_batch(), []
            for index in indexes:
                item = listed[index]
                headers = list(item.headers)
                if batch.append(key=item.key, value=item.value, timestamp=None, headers=headers):
                    taken.append(index)
                    continue
                if not taken:  # the batch is full with nothing in it
                    raise ValueError(f"a record for {topic} is larger than a whole batch")
                future = await producer.send_batch(batch, topic, partition=partition)
                pending.append((topic, partition, taken, future))
                batch, taken = producer.create_batch(), [index]
                if not batch.append(
                    key=item.key, value=item.value, timestamp=None, headers=headers
                ):
                    raise ValueError(f"a record for {topic} is larger than a whole batch")
            future = await producer.send_batch(batch, topic, partition=partition)
            pending.append((topic, partition, taken, future))
        self.records += len(listed)
        self.batches += len(pending)
        placed: asyncio.Future[Placed] = asyncio.get_running_loop().create_future()
        if not pending:
            placed.set_result([])
            return placed

        def landed(gathered: asyncio.Future[list[Any]]) -> None:
            if placed.done():
                return
            if gathered.cancelled():
                placed.cancel()
                return
            error = gathered.exception()
            if error is not None:
                placed.set_exception(error)
                return
            where: Placed = [("", -1, -1)] * len(listed)
            for (topic, partition, taken, _), metadata in zip(
                pending, gathered.result(), strict=True
            ):
                for position, index in enumerate(taken):
                    where[index] = (topic, partition, metadata.offset + position)
            placed.set_result(where)

        asyncio.gather(*(future for *_, future in pending)).add_done_callback(landed)
        return placed

"""A one-agent Faust app for ``test_inorder_delivery.py``: writes each offset it sees.

Run as ``python -m faust -A tests.integration.inorder_app worker`` with ``INORDER_*``
settings in the environment. ``INORDER_CONSUMER`` picks Faust's own aiokafka consumer
(``faust``) or the worker's (``inorder``, ``streams/consumer.py``). ``INORDER_LOSE``
(``first-last``) makes the consumer lose those fetched offsets of partition 0, once, the
way Faust's ``getmany`` loses the rest of a batch it breaks off: the records were
fetched, so the Kafka consumer's position is already past them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import faust
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message, StreamT
from faust.types.transports import ConsumerT, TransportT

from streams.consumer import InOrderConsumer

env = os.environ


def _offsets(name: str) -> set[int]:
    first, _, last = env.get(name, "").partition("-")
    return set(range(int(first), int(last) + 1)) if first else set()


class LosesFetchedRecords:
    """Drops the ``INORDER_LOSE`` offsets of partition 0 from the first fetch holding them."""

    _to_lose: set[int] = _offsets("INORDER_LOSE")

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> RecordMap:
        records: RecordMap = await super()._getmany(active_partitions, timeout)  # type: ignore[misc]
        lost = {r.offset for tp, rs in records.items() if tp.partition == 0 for r in rs}
        lost &= self._to_lose
        self._to_lose -= lost
        return {
            tp: [r for r in rs if not (tp.partition == 0 and r.offset in lost)]
            for tp, rs in records.items()
        }


class FaustConsumer(LosesFetchedRecords, faust_aiokafka.Consumer):
    pass


class LosesDeliveredRecords(InOrderConsumer):
    """Drops the ``INORDER_LOSE_DELIVERED`` offsets of partition 0 once, after delivery."""

    _to_lose_delivered: set[int] = _offsets("INORDER_LOSE_DELIVERED")

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        async for tp, message in super().getmany(timeout):
            if tp.partition == 0 and message.offset in self._to_lose_delivered:
                self._to_lose_delivered.discard(message.offset)
                continue
            yield tp, message


class WorkerConsumer(LosesFetchedRecords, LosesDeliveredRecords):
    pass


class LenientWorkerConsumer(WorkerConsumer):
    """The worker's consumer with Faust's own commit rule (``committed + 1`` taken for
    the offset due after ``committed``), to show what the stricter rule prevents."""

    _new_offset = faust_aiokafka.Consumer._new_offset


CONSUMERS: dict[str, type[ConsumerT]] = {
    "faust": FaustConsumer,
    "inorder": WorkerConsumer,
    "lenient": LenientWorkerConsumer,
}


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = CONSUMERS[env.get("INORDER_CONSUMER", "inorder")]


class TestApp(faust.App):
    __test__ = False  # not a pytest class

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


app = TestApp(
    env.get("INORDER_APP_ID", "inorder-test"),
    broker=f"kafka://{env.get('INORDER_BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    key_serializer="raw",
    value_serializer="raw",
    web_port=int(env.get("INORDER_PORT", "6066")),
    broker_commit_interval=0.5,
    autodiscover=False,
)
topic = app.topic(env.get("INORDER_TOPIC", "inorder"), value_type=bytes)
seen = Path(env.get("INORDER_OUT", "seen.txt"))


@app.agent(topic, concurrency=1)
async def record_offsets(stream: StreamT[Any]) -> AsyncIterator[None]:
    with seen.open("a") as out:
        async for event in stream.events():
            out.write(f"{event.message.partition} {event.message.offset}\n")
            out.flush()
            yield None

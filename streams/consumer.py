"""The worker's Kafka consumer: Faust's aiokafka consumer, delivering without holes.

See ``streams/delivery.py`` for why and for the decisions. This module only keeps, per
partition of an acknowledged topic (the agents' sources; not the table changelogs, which
Faust reads itself and which compaction leaves with holes), the offset due next:

* after every seek to the committed offsets (each rebalance), from those offsets; a
  partition the group never committed is first sent back to the start of its log, as
  ``auto_offset_reset=earliest`` promises, instead of wherever an earlier fetch left it;
* after each delivered record, its offset + 1.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import faust
from faust import transport
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import ConsumerT, TransportT

from streams.delivery import Probe, Step, next_step

log = logging.getLogger(__name__)


class InOrderConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose ``getmany`` never yields past a missing record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._due: dict[TP, int] = {}
        self._probes: dict[TP, Probe] = {}

    def _guarded(self, tp: TP) -> bool:
        return bool(self.app.topics.acks_enabled_for(tp.topic))

    async def perform_seek(self) -> None:
        await super().perform_seek()  # sets _read_offset to the committed offsets
        assigned = [tp for tp in self.assignment() if self._guarded(tp)]
        never_committed = [tp for tp in assigned if self._read_offset.get(tp) is None]
        due = {tp: offset for tp in assigned if (offset := self._read_offset.get(tp)) is not None}
        if never_committed and self.app.conf.consumer_auto_offset_reset == "earliest":
            earliest = dict(await self.earliest_offsets(*never_committed))
            await self.seek_wait(earliest)
            due.update(earliest)
        self._due = due
        self._probes = {}

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._due[partition] = offset

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        rewound: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            if tp in rewound:
                continue  # to be read again from the offset due
            if not self._guarded(tp):
                yield tp, message
                continue
            expected = self._due.get(tp)
            step = next_step(expected, message.offset, self._probes.get(tp))
            if step is Step.DELIVER:
                if expected is not None and message.offset != expected:
                    log.warning(
                        "%s[%d]: offsets %d..%d are not in the log; going on at %d",
                        tp.topic, tp.partition, expected, message.offset - 1, message.offset
                    )  # fmt: skip
                self._due[tp] = message.offset + 1
                self._probes.pop(tp, None)
                yield tp, message
            elif step is Step.DROP:
                log.info(
                    "%s[%d]: dropped offset %d, read already (%d is due)",
                    tp.topic, tp.partition, message.offset, expected
                )  # fmt: skip
            elif step is Step.REWIND and expected is not None:
                log.info(  # after each rebalance, as Faust drops the batch it had fetched
                    "%s[%d]: read offset %d while %d is due; seeking back to %d",
                    tp.topic, tp.partition, message.offset, expected, expected
                )  # fmt: skip
                self._probes[tp] = Probe(expected, message.offset)
                rewound.add(tp)
                await self.seek_wait({tp: expected})


class InOrderTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = InOrderConsumer


class App(faust.App):
    """``faust.App`` whose Kafka consumer delivers each partition in order, without holes."""

    def _new_transport(self) -> TransportT:
        if transport.by_url(self.conf.broker_consumer[0]) is faust_aiokafka.Transport:
            return InOrderTransport(self.conf.broker_consumer, self)
        return super()._new_transport()

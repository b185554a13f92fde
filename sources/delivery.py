"""Events to the events topic, acknowledged: the one way a source hands events on.

STAND-IN written for the IdP pollers' and webhooks' broker tests (branch ``idp-io``); the
HTTP ingest's own ``EventDelivery`` replaces it at merge. The shape is the contract:
``EventDelivery(aiokafka_config, topic)``, ``await deliver(events)`` returning only once
the broker acknowledged every event (idempotent producer, ``acks=all``), else raising
:class:`BrokerUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers


class BrokerUnavailable(Exception):
    """Not every event was acknowledged: the caller must not report them delivered."""


class EventDelivery:
    """An idempotent aiokafka producer to ``topic`` (started on entering, stopped on leaving)."""

    def __init__(self, config: Mapping[str, Any], topic: str) -> None:
        self._config = dict(config)
        self._topic = topic
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, linger_ms=5, **self._config
        )
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise BrokerUnavailable(f"cannot reach the broker: {exc}") from exc
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> EventDelivery:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def deliver(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if self._producer is None:
            raise BrokerUnavailable("the delivery is not started")
        headers = structured_headers()
        try:
            sent = [
                await self._producer.send(
                    self._topic, encode(event), key=kafka_key(event), headers=headers
                )
                for event in events
            ]
            await asyncio.gather(*sent)
        except Exception as exc:  # aiokafka's KafkaError and timeouts alike
            raise BrokerUnavailable(f"the broker did not acknowledge every event: {exc}") from exc

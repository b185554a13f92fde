"""Putting events on the events topic and knowing the broker has them.

:class:`EventDelivery` is the one producer of every ingest path (HTTP ingest, the
identity providers' pollers and webhooks): an aiokafka producer, idempotent with
``acks=all``, whose :meth:`~EventDelivery.deliver` returns only once the broker
acknowledged every event it was given, and raises :class:`BrokerUnavailable` when it
cannot within its timeout. Then *some* of the events may already be in the log: the caller
retries the same events (same ids) and the pipeline drops duplicates by id. After a
failure the producer is abandoned, not flushed (reaching into aiokafka 0.14.0's
accumulator and sender), and the next call starts a new one. The configuration is a plain
aiokafka keyword dict (:func:`verifiers.kafka_connection.aiokafka_config`, made by the
front door). What a failure means, in full: docs/http-ingest.md#delivery-to-the-broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers

DEFAULT_TIMEOUT_S: Final = 10.0
_STOP_GRACE_S: Final = 5.0


class BrokerUnavailable(Exception):
    """The broker did not acknowledge every event in time (or could not be reached).

    Some of the events may have been written (docs/http-ingest.md#delivery-to-the-broker):
    retry the same events, with the same ids."""


class EventDelivery:
    """An idempotent ``acks=all`` producer to ``topic`` that says when events are durable.

    ``kafka``: aiokafka keyword arguments (servers and security); ``timeout_s``: the
    longest :meth:`deliver` waits for the broker before :class:`BrokerUnavailable`;
    ``linger_ms``: how long the producer gathers a batch. Use as an async context manager,
    or call :meth:`start` and :meth:`stop`; :meth:`deliver` starts it when needed.
    """

    def __init__(
        self,
        kafka: Mapping[str, Any],
        *,
        topic: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        linger_ms: int = 5,
        client_id: str = "factorstream-ingest",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.topic = topic
        self.timeout_s = timeout_s
        self._kafka = dict(kafka)
        self._linger_ms = linger_ms
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self._headers = structured_headers()
        self.delivered = 0
        """Events acknowledged so far (for a status line or a benchmark)."""

    def _new_producer(self) -> AIOKafkaProducer:
        timeout_ms = max(int(self.timeout_s * 1000), 1000)
        return AIOKafkaProducer(
            **self._kafka,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            request_timeout_ms=timeout_ms,
            retry_backoff_ms=100,
            metadata_max_age_ms=30_000,
        )

    async def start(self) -> None:
        """Connect (raises :class:`BrokerUnavailable` when the broker cannot be reached)."""
        await self._ready()

    async def _ready(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is not None:
                return self._producer
            producer = self._new_producer()
            try:
                async with asyncio.timeout(self.timeout_s):
                    await producer.start()
            except (KafkaError, OSError, TimeoutError) as error:
                self._retire(producer)
                raise BrokerUnavailable(f"cannot reach the broker: {_describe(error)}") from None
            except BaseException:  # cancelled (the caller's own time ran out): no leak
                self._retire(producer)
                raise
            self._producer = producer
            return producer

    async def deliver(self, events: Sequence[Event]) -> None:
        """Return once the broker acknowledged every event of ``events`` (all in the
        events topic, in order per partition key); :class:`BrokerUnavailable` otherwise,
        within ``timeout_s`` of the call however many calls wait for a connection."""
        if not events:
            return
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                producer = await self._ready()
                pending = [
                    await producer.send(
                        self.topic,
                        value=encode(event),
                        key=kafka_key(event),
                        headers=self._headers,
                    )
                    for event in events
                ]
                await asyncio.gather(*pending)
        except (KafkaError, OSError, TimeoutError) as error:
            if producer is not None:
                self._replace(producer)
            raise BrokerUnavailable(
                f"the broker did not acknowledge all {len(events)} event(s) within "
                f"{self.timeout_s:g} s ({_describe(error)}); some may be written: retry them "
                "with the same ids"
            ) from None
        self.delivered += len(events)

    def _replace(self, failed: AIOKafkaProducer) -> None:
        """Abandon ``failed`` (if it is still the current producer); the next call makes a
        new one."""
        if self._producer is failed:
            self._producer = None
            self._retire(failed, abandon=True)

    def _retire(self, producer: AIOKafkaProducer, *, abandon: bool = False) -> None:
        stopping = self._abandon(producer) if abandon else self._stop_quietly(producer)
        task = asyncio.get_running_loop().create_task(stopping)
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    @staticmethod
    async def _abandon(producer: AIOKafkaProducer) -> None:
        """Close ``producer`` without delivering the batches it still holds (they fail)."""
        with contextlib.suppress(Exception):
            producer._message_accumulator.fail_all(BrokerUnavailable("abandoned"))
            async with asyncio.timeout(_STOP_GRACE_S):
                if producer._sender is not None:
                    await producer._sender.close()
            producer._closed = True
            await producer.client.close()

    @staticmethod
    async def _stop_quietly(producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_STOP_GRACE_S):
                await producer.stop()

    async def stop(self) -> None:
        """Flush what is pending (briefly) and close every connection."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop_quietly(producer)
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    async def __aenter__(self) -> EventDelivery:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

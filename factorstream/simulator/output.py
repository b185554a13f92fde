"""Where simulated events go, and the digest that proves a run replays.

The verifier path stages events in the store's outbox (:class:`OutboxTail` reads them back
in commit order, for a JSONL file or the digest; :class:`verifiers.publish.OutboxRelay`
publishes them to Kafka). The fast path hands encoded events to an :class:`EventSink`.

The digest is SHA-256 over the canonical encoding of every event (``schemas.encode``, the
bytes that go on the wire), each followed by a newline, in stream order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

from verifiers.publish import Producer, outbox_events


class StreamDigest:
    """SHA-256 over encoded events in order (each followed by ``\\n``), and their count."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def update(self, values: Iterable[bytes]) -> None:
        for value in values:
            self._hash.update(value)
            self._hash.update(b"\n")
            self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class OutboxTail:
    """Reads outbox rows committed since the last read, in commit (``seq``) order."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.last_seq = 0

    def read(self, limit: int = 5000) -> list[bytes]:
        table = outbox_events
        query = (
            sa.select(table.c.seq, table.c.value)
            .where(table.c.seq > self.last_seq)
            .order_by(table.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if rows:
            self.last_seq = rows[-1].seq
        return [bytes(row.value) for row in rows]

    def drain(self, consume: Callable[[list[bytes]], None]) -> None:
        """Hand every row not read yet to ``consume``, batch by batch."""
        while batch := self.read():
            consume(batch)


class EventSink(Protocol):
    def write(self, values: list[bytes], keys: list[bytes]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One encoded event per line (what ``schemas.decode`` reads back)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb")

    def write(self, values: list[bytes], keys: list[bytes]) -> None:
        for value in values:
            self._file.write(value + b"\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class KafkaSink:
    """Straight to a topic (fast mode): key = partitionkey, structured CloudEvents."""

    def __init__(self, producer: Producer, topic: str) -> None:
        from schemas.codec import structured_headers

        self._producer = producer
        self._topic = topic
        self._headers = structured_headers()

    def write(self, values: list[bytes], keys: list[bytes]) -> None:
        for value, key in zip(values, keys, strict=True):
            self._producer.send(self._topic, value=value, key=key, headers=self._headers)

    def close(self) -> None:
        self._producer.flush(timeout=60)
        self._producer.close(timeout=10)


class ListSink:
    """Keeps the encoded events in memory (tests)."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def write(self, values: list[bytes], keys: list[bytes]) -> None:
        self.values.extend(values)

    def close(self) -> None:
        pass

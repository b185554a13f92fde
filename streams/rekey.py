"""Re-keying: folds keyed by something else than ``partitionkey`` (client IP, tenant).

A fold's table partition must be its source topic partition (one writer per key), so a
fold keyed by IP cannot read the ingested topic, which is keyed by ``partitionkey``. The
``rekey`` agent reads the ingested topic once and forwards each event to one internal
topic per kind of key (:class:`Rekeying`), keyed by that key::

    <app_id>-events-ingested ──rekey──> <app_id>-events-by-ip      (key = client IP)
                                   └──> <app_id>-events-by-tenant  (key = tenant)

An event goes to a topic when one of its key functions gives a key (the first that does;
the functions of one kind must agree, e.g. every IP key is the canonical address text),
and nowhere when none does: most events carry nothing an IP or tenant fold reads, so each
topic carries only what its folds need. Every fold on a re-keyed topic runs in the agent
shape of :mod:`streams.lockout_agent` (decode, fold, write back, forward derived) with the
record's key as its table key — the very bytes the producer partitioned by, which the
table router hashes too.

Re-keying crosses partitions: events of one IP from different subjects reach its topic
partition in the order the rekey agent's instances (one per ingested partition) forward
them, which is each subject's order but not a global one. The folds keyed by IP or tenant
(time windows over event time) are built for that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import faust
from faust.types import AgentT, StreamT, TableT, TopicT

from schemas import Event, decode
from schemas.codec import structured_headers
from streams.ingest import record_headers
from streams.lockout_agent import KeyedFold, apply_event
from streams.positions import JsonState, origin_of, position_of, via_header

KeyOf = Callable[[Event], str | None]
"""A fold's key of an event; ``None``: the fold ignores the event."""
REKEY_AGENT = "rekey"
TOPIC_INFIX = "events-by-"


@dataclass(frozen=True)
class Rekeying:
    """One internal topic keyed by one kind of key: ``<app_id>-events-by-<name>``."""

    name: str
    """The kind of key (``ip``, ``tenant``)."""
    keys: tuple[KeyOf, ...]
    """The key functions of the folds reading the topic."""

    def key(self, event: Event) -> str | None:
        """The first key any fold of this topic gives ``event`` (``None``: none wants it)."""
        for key_of in self.keys:
            key = key_of(event)
            if key is not None:
                return key
        return None


def rekeyed_topic_name(app_id: str, name: str) -> str:
    return f"{app_id}-{TOPIC_INFIX}{name}"


def attach_rekey(
    app: faust.App, *, source: TopicT, routes: Sequence[tuple[Rekeying, TopicT]]
) -> AgentT[bytes]:
    """The ``rekey`` agent (concurrency 1): each event of ``source`` to every route's topic
    that has a key for it. It yields the keys it forwarded by, by route name."""

    async def rekey(stream: StreamT[bytes]) -> AsyncIterator[dict[str, str]]:
        async for record in stream.events():
            value = record.value
            event = decode(value)  # ingest wrote it with our codec: a failure is a bug
            headers = [
                *structured_headers(),
                *origin_of(record_headers(record.message.headers)),
                via_header(record.message.partition),
            ]
            forwarded: dict[str, str] = {}
            for rekeying, topic in routes:
                key = rekeying.key(event)
                if key is not None:
                    await topic.send(key=key.encode(), value=value, headers=headers)
                    forwarded[rekeying.name] = key
            yield forwarded

    agent: AgentT[bytes] = app.agent(source, name=REKEY_AGENT, concurrency=1)(rekey)
    return agent


def attach_rekeyed_fold_agent(
    app: faust.App,
    fold: KeyedFold,
    *,
    key: KeyOf,
    source: TopicT,
    table: TableT[bytes, JsonState],
    sink: TopicT,
) -> AgentT[bytes]:
    """Run ``fold`` over a re-keyed topic at concurrency 1, its table keyed by the record key.

    Events the fold's ``key`` ignores (forwarded for another fold of the topic) are skipped
    without a table read. The agent yields each event's derived events.
    """

    async def fold_events(stream: StreamT[bytes]) -> AsyncIterator[list[Event]]:
        async for record in stream.events():
            event = decode(record.value)
            if record.key is None or key(event) is None:
                yield []
                continue
            position = position_of(record_headers(record.message.headers), via=True)
            yield await apply_event(
                fold, table=table, key=bytes(record.key), event=event, position=position, sink=sink
            )

    agent: AgentT[bytes] = app.agent(source, name=fold.name, concurrency=1)(fold_events)
    return agent

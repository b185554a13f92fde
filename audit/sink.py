"""The Faust agent that appends every event to the ledger, in batches, idempotently.

Offsets are acknowledged only after the batch is durable. Faust's ``Stream.take``
acknowledges a batch's events in a ``finally`` after the ``yield``, that is also when
the agent body raises, so a failed append could still commit their offsets. This agent
therefore uses ``Stream.noack_take`` (same batching, no acknowledgement) and acks each
event itself once ``Ledger.append`` has committed. A worker killed mid-batch has acked
nothing of it: the batch is consumed again on restart, and the ledger skips the ids it
already holds, so every event is appended exactly once.

Database errors (a lost connection, a locked file) are retried with backoff, without
acknowledging anything; an event that does not decode is logged and acknowledged (the
ingest agent already sent it to the dead-letter topic). Signed checkpoints are published
to the checkpoints topic (``audit.checkpoint.signed``, key ``system/<log id>``) after
each batch, and marked published once the broker has them; a timer signs time-based
checkpoints when no events arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import faust
import sqlalchemy as sa
from faust.types import AgentT, EventT, StreamT, TopicT

from audit.checkpoints import Checkpoint
from audit.ledger import Ledger
from schemas import Event, decode, encode, kafka_key, new_event
from schemas.codec import structured_headers
from schemas.envelope import uuid7
from schemas.errors import EventDecodeError
from schemas.payloads import CheckpointSigned

log = logging.getLogger(__name__)

CHECKPOINT_TENANT = "system"
RETRYABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, OSError)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def checkpoint_event(checkpoint: Checkpoint, *, source: str) -> Event:
    """The ``audit.checkpoint.signed`` event of a checkpoint (its id is deterministic)."""
    digest = hashlib.sha256(f"{checkpoint.log_id}|{checkpoint.tree_size}".encode()).digest()
    document = checkpoint.to_json()
    return new_event(
        CheckpointSigned(
            log_id=checkpoint.log_id,
            tree_size=checkpoint.tree_size,
            root_hash=document["root_hash"],
            key_id=checkpoint.key_id,
            signature=document["signature"],
        ),
        source=source,
        tenant=CHECKPOINT_TENANT,
        subject=checkpoint.log_id,
        correlationid=f"checkpoint-{checkpoint.tree_size}",
        now=checkpoint.time,
        event_id=uuid7(checkpoint.time, random_bits=int.from_bytes(digest[:10], "big")),
    )


async def append_durably(
    ledger: Ledger,
    values: list[bytes],
    *,
    clock: Clock,
    backoff_s: tuple[float, float] = (0.5, 30.0),
) -> int:
    """Decode and append ``values``; retries database errors until the batch commits."""
    events = []
    for value in values:
        try:
            events.append(decode(value))
        except EventDecodeError as error:
            log.error("ledger sink: skipping an event that does not decode: %s", error)
    delay, longest = backoff_s
    while True:
        try:
            result = await asyncio.to_thread(ledger.append, events, now=clock())
        except RETRYABLE as error:
            log.warning("ledger append failed (%s); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
        else:
            return result.appended


async def publish_checkpoints(ledger: Ledger, topic: TopicT, *, clock: Clock) -> int:
    """Send every unpublished checkpoint; mark them published once the broker has them."""
    pending = await asyncio.to_thread(ledger.unpublished)
    for checkpoint in pending:
        event = checkpoint_event(checkpoint, source=ledger.source)
        # force: not attached to the agent's current event, which noack_take may not
        # have acknowledged yet (the send would wait for a commit that waits for this)
        sent: Any = await topic.send(
            key=kafka_key(event), value=encode(event), headers=structured_headers(), force=True
        )
        if isinstance(sent, Awaitable):
            await sent
    if pending:
        sizes = [c.tree_size for c in pending]
        await asyncio.to_thread(ledger.mark_published, sizes, now=clock())
    return len(pending)


def attach_ledger_sink(
    app: faust.App,
    *,
    source: TopicT,
    ledger: Ledger,
    batch_size: int,
    batch_timeout_s: float,
    checkpoints: TopicT | None = None,
    clock: Clock = _utc_now,
    name: str = "ledger-sink",
) -> AgentT[Any]:
    """Wire the sink agent (``concurrency=1``) reading raw structured-mode events."""

    async def ledger_sink(stream: StreamT[bytes]) -> Any:
        # noack_take yields the buffered *events* (typed as values by faust)
        batches = cast(faust.Stream[Any], stream).noack_take(batch_size, within=batch_timeout_s)
        async for taken in batches:
            batch = cast(list[EventT[bytes]], taken)
            appended = await append_durably(ledger, [e.value for e in batch], clock=clock)
            for event in batch:  # the batch is committed: now its offsets may go
                await stream.ack(event)
            if checkpoints is not None:
                await publish_checkpoints(ledger, checkpoints, clock=clock)
            yield appended

    agent: AgentT[Any] = app.agent(source, name=name, concurrency=1)(ledger_sink)

    if checkpoints is not None:
        interval = max(1.0, ledger.checkpoint_interval.total_seconds() / 4)

        async def sign_checkpoints() -> None:
            await asyncio.to_thread(ledger.tick, now=clock())
            await publish_checkpoints(ledger, checkpoints, clock=clock)

        app.timer(interval, name=f"{name}-checkpoints")(sign_checkpoints)

    return agent

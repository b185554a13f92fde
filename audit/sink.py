"""What the ledger sink does with a batch: append it durably, publish the checkpoints.

The sink (``LedgerSink`` in ``streams/sinks.py``) takes a fetched batch of every event
(raw and derived) at a time, acknowledged only after it is durable, in the worker or in a
process of its own (``factorstream sink ledger``). A worker killed
mid-batch has acknowledged nothing of it: the batch is read again on restart, and the
ledger skips the ids it already holds, so every event is appended exactly once.

* :func:`append_durably` decodes the batch and appends it in one transaction; database
  errors (a lost connection, a locked file) are retried with backoff and the call
  returns only once the batch is committed, so nothing is acknowledged meanwhile. An
  event that does not decode is logged and skipped (only our stages write the sink's
  topics; ingest dead-letters what does not decode).
* :func:`publish_checkpoints` sends the signed checkpoints not yet published to the
  checkpoints topic (:func:`checkpoint_event`: ``audit.checkpoint.signed``, key
  ``system/<log id>``) and marks them published once the broker has them; the runner
  calls it after each batch and on a timer that signs time-based checkpoints when no
  events arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from audit.checkpoints import Checkpoint
from audit.ledger import AppendResult, Ledger
from schemas import Event, decode, encode, kafka_key, new_event
from schemas.codec import structured_headers
from schemas.envelope import uuid7
from schemas.errors import EventDecodeError
from schemas.fields import PLATFORM_TENANT
from schemas.payloads import CheckpointSigned

log = logging.getLogger(__name__)

CHECKPOINT_TENANT = PLATFORM_TENANT
RETRYABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, OSError)
Clock = Callable[[], datetime]
Send = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
"""Sends one record (key, value, headers) to the checkpoints topic; done once the broker
has it."""


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
    on_append: Callable[[AppendResult], None] | None = None,
) -> int:
    """Decode and append ``values``; retries database errors until the batch commits.
    ``on_append``: told the result (the tree's size, the checkpoints signed), e.g. for
    metrics."""
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
            if on_append is not None:
                on_append(result)
            return result.appended


async def publish_checkpoints(ledger: Ledger, send: Send, *, clock: Clock) -> int:
    """Send every unpublished checkpoint; mark them published once the broker has them."""
    pending = await asyncio.to_thread(ledger.unpublished)
    for checkpoint in pending:
        event = checkpoint_event(checkpoint, source=ledger.source)
        await send(kafka_key(event), encode(event), structured_headers())
    if pending:
        sizes = [c.tree_size for c in pending]
        await asyncio.to_thread(ledger.mark_published, sizes, now=clock())
    return len(pending)

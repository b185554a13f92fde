"""The lake's background compaction, on a timer of the process that runs the lake sink.

The lake sink itself runs as an engine runner, ``LakeRunner`` in ``streams/sinks.py``: a
fetched batch at a time, flattened into the lake's tables and written as complete files
of at most ``batch_rows`` rows (``analytics.lake.LakeWriter``: idempotent by event id, so
Kafka's at-least-once re-delivery adds no duplicate rows), acknowledged once written. A
``privacy.subject.erased`` event redacts the subject's personal data in the whole lake
(``analytics/erasure.py``), and rows of erased subjects from before their erasure are
redacted before they are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust

from analytics.compaction import Compacted, compact
from analytics.retention import Expired, expire

log = logging.getLogger(__name__)

COMPACTION_INTERVAL_S = 300.0
FUTURE_SLACK = timedelta(days=1)
"""Partitions dated up to this far after today are kept (time zones, clock skew)."""


def maintain_lake(
    lake_path: Path, *, min_files: int, keep: timedelta | None, now: datetime
) -> tuple[list[Expired], list[Compacted]]:
    """One pass of the lake's upkeep: partitions past the retention ``keep`` (and those
    dated ahead of ``now``) deleted (``None``: kept), then compaction."""
    expired: list[Expired] = []
    if keep is not None:
        expired = expire(
            lake_path,
            keep_from=(now - keep).date(),
            keep_until=(now + FUTURE_SLACK).date(),
        )
        if expired:
            log.info(
                "lake retention: deleted %d partitions (%d files) outside %s .. %s",
                len(expired),
                sum(e.files for e in expired),
                (now - keep).date(),
                (now + FUTURE_SLACK).date(),
            )
    return expired, compact(lake_path, min_files=min_files)


def attach_lake_compaction(
    app: faust.App,
    *,
    lake_path: Path,
    min_files: int,
    keep: timedelta | None = None,
    interval_s: float = COMPACTION_INTERVAL_S,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_expired: Callable[[list[Expired]], None] | None = None,
) -> None:
    """Apply the lake's retention (``keep``) and compact it every ``interval_s`` seconds, on
    the leader worker only (in a thread; compaction and the sinks of every worker
    coordinate through the lake's lock). ``on_expired``: told what each pass deleted."""

    async def compact_lake() -> None:
        expired, _ = await asyncio.to_thread(
            maintain_lake, lake_path, min_files=min_files, keep=keep, now=clock()
        )
        if on_expired is not None:
            on_expired(expired)

    app.timer(interval_s, on_leader=True, name="lake-compaction")(compact_lake)

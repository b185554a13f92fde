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
from pathlib import Path

import faust

from analytics.compaction import compact

COMPACTION_INTERVAL_S = 300.0


def attach_lake_compaction(
    app: faust.App, *, lake_path: Path, min_files: int, interval_s: float = COMPACTION_INTERVAL_S
) -> None:
    """Compact the lake every ``interval_s`` seconds, on the leader worker only (in a thread;
    compaction and the sinks of every worker coordinate through the lake's lock)."""

    async def compact_lake() -> None:
        await asyncio.to_thread(compact, lake_path, min_files=min_files)

    app.timer(interval_s, on_leader=True, name="lake-compaction")(compact_lake)

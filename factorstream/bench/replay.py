"""``bench replay``: ``factorstream replay`` over a log of 1,000,000 events, against the
goal of replaying that many in under 5 minutes on this machine.

The events (the pipeline benchmark's synthetic mix, 40 per subject) are produced to a
fresh events topic first, untimed; the replay then runs as an operator runs it, the CLI in
a process of its own with settings that name that topic, timed from its start to its exit
(reading the topic, every stage, the digests). The baseline is the goal as a rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from factorstream.bench import BenchResult, Measurement
from factorstream.bench.broker import broker_for
from factorstream.bench.events import synthetic_events
from factorstream.bench.pipeline import produce_records
from factorstream.localkafka import ensure_pipeline_topics
from factorstream.settings import Settings, StreamSettings, TopicSettings, environment
from schemas import encode, kafka_key

GOAL_EVENTS, GOAL_S = 1_000_000, 300.0
"""The goal: 1,000,000 events replayed in under 5 minutes."""


def run(
    *,
    settings: Settings,
    quick: bool,
    events: int | None,
    bootstrap: str | None,
    say: Callable[[str], None] = lambda _: None,
) -> BenchResult:
    count = events or (2_000 if quick else GOAL_EVENTS)
    with broker_for(settings, bootstrap) as on_broker, tempfile.TemporaryDirectory() as tmp:
        unique = uuid.uuid4().hex[:8]
        topics = TopicSettings.under(f"bench.replay.{unique}")
        kafka = on_broker.kafka()
        ensure_pipeline_topics(kafka, topics)
        target = on_broker.model_copy(
            update={
                "data_dir": Path(tmp),
                "topics": topics,
                "stream": StreamSettings(app_id=f"bench-replay-{unique}"),
            }
        )
        say(f"producing {count:,} events (not timed)")
        records = [
            (kafka_key(e), encode(e)) for e in synthetic_events(count, subjects=max(1, count // 40))
        ]
        asyncio.run(produce_records(kafka, topics.events, records))
        del records
        say(f"factorstream replay over {count:,} events")
        base = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our interpreter, our CLI
            [sys.executable, "-m", "factorstream.cli", "replay", "--json"],
            env=base | environment(target),
            capture_output=True,
            text=True,
            timeout=3 * 3600,
            check=False,
        )
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"factorstream replay failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    replayed = json.loads(done.stdout)
    if replayed.get("records") != count:
        raise RuntimeError(f"factorstream replay read {replayed.get('records')} of {count} records")
    return BenchResult(
        bench="replay",
        baseline=Measurement(
            f"goal: {GOAL_EVENTS:,} events in {GOAL_S / 60:.0f} minutes",
            GOAL_EVENTS / GOAL_S,
            1,
            GOAL_EVENTS,
        ),
        contenders=[
            Measurement(
                "factorstream replay (read the topic, every stage)", count / elapsed, 1, count
            )
        ],
        goal_ratio=1.0,
        goal_text=f"{GOAL_EVENTS:,} events replayed in under {GOAL_S / 60:.0f} minutes",
        notes={
            "events": f"{count:,} synthetic sign-in events, 6 partitions, "
            f"{max(1, count // 40):,} subjects (40 events each)",
            "replay": f"{elapsed:,.0f} s, {replayed.get('dead_lettered')} dead-lettered, "
            f"{replayed.get('duplicates')} duplicates",
            "broker": kafka.bootstrap,
        },
    )

"""``bench pipeline``: the stream worker against a bare aiokafka consume-and-decode loop.

* **Throughput.** A real ``factorstream worker`` process (its own consumer group, RocksDB
  tables, every agent: ingest, lockout, the detections, re-keying, per-IP blocking) is
  started and waited for; then the events are produced as fast as the producer goes, and
  the clock stops when the worker's group has committed everything on the events, ingested
  and re-keyed topics. The baseline reads the same topic from its beginning with a bare
  aiokafka consumer and decodes every record with our codec, nothing else.
* **Latency.** Under a steady background of synthetic traffic, each probe produces five
  failed sign-ins of a fresh business-tier subject (five lock it) and polls the lockout
  API until it answers ``locked`` as of the last failure's time (the events carry
  historical times; the API's default is the clock now): the time from producing to
  seeing the lock. Measured under the goal's 2,000 events/s and under a light 50 events/s,
  which shows the latency of a worker that keeps up.
* **Where the time goes.** Two Faust floors over the same events on the same broker
  (``factorstream.bench.faust_floor``): one agent that only decodes, and one that also
  forwards each event and writes one table key — one hop. Beside them, the records the
  worker wrote per event (each a Faust send). And the same folds in one process without
  Kafka (``streams/replay.py``), timed per stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from factorstream.bench import BenchResult, Measurement
from factorstream.bench.broker import broker_for
from factorstream.bench.events import START, synthetic_events
from factorstream.bench.faust_floor import MODES, Mode, floor_environment, floor_internal_topics
from factorstream.localkafka import ensure_topics, free_port
from factorstream.settings import Settings, StreamSettings, TopicSettings, environment
from schemas import Event, decode, encode, kafka_key, new_event
from schemas import payloads as p
from schemas.codec import structured_headers
from schemas.fields import Client, Outcome, PolicyTier
from streams.logs import end_offsets, group_lag
from streams.replay import LogRecord, replay_settings

Record = tuple[bytes, bytes]


@dataclass(frozen=True)
class Sizes:
    events: int
    probes: int
    background_per_s: tuple[int, ...]
    """Latency is measured under each of these rates of background traffic, lightest first
    (the last is the goal's; a lighter one shows the latency when the worker keeps up)."""
    profile_events: int


def run(
    *,
    settings: Settings,
    quick: bool,
    events: int | None,
    bootstrap: str | None,
    say: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    sizes = Sizes(2_000, 5, (20,), 2_000) if quick else Sizes(200_000, 100, (50, 2_000), 20_000)
    if events is not None:
        sizes = Sizes(events, sizes.probes, sizes.background_per_s, min(events, 20_000))
    sample = synthetic_events(sizes.events, subjects=5_000)
    records = [(kafka_key(e), encode(e)) for e in sample]
    with broker_for(settings, bootstrap) as broker, tempfile.TemporaryDirectory() as tmp:
        unique = uuid.uuid4().hex[:8]
        topics = TopicSettings(
            events=f"bench.pipeline.{unique}.events",
            dlq=f"bench.pipeline.{unique}.dlq",
            lockouts=f"bench.pipeline.{unique}.lockouts",
            anomalies=f"bench.pipeline.{unique}.anomalies",
            checkpoints=f"bench.pipeline.{unique}.checkpoints",
        )
        ensure_topics(broker, topics.partitions())
        port = free_port()
        worker_settings = settings.model_copy(
            update={
                "kafka_bootstrap": broker,
                "data_dir": Path(tmp),
                "topics": topics,
                "stream": StreamSettings(
                    app_id=f"bench-pipeline-{unique}", web_port=port, standby_replicas=0
                ),
            }
        )
        with _worker(worker_settings, Path(tmp) / "worker.log") as log:
            say("starting the worker")
            _wait_for_api(port, log)
            say(f"producing {len(records):,} events; waiting for the worker to commit them all")
            worker_rate = _worker_round(worker_settings, records)
            hops = _records_written(broker, worker_settings) / len(records)
            say(f"worker: {worker_rate:,.0f} events/s; latency probes under background traffic")
            probed = [
                (rate, *_latency_probes(worker_settings, port, sizes.probes, rate))
                for rate in sizes.background_per_s
            ]
        floors = []
        for mode in MODES:
            say(f"the Faust floor: one agent that does '{mode}' per event")
            floors.append(_floor_round(broker, unique, mode, records, Path(tmp)))
        say("bare aiokafka consume + decode, 3 rounds")
        bare_rate = max(
            asyncio.run(_bare_round(broker, topics.events, topics.events_partitions, len(records)))
            for _ in range(3)
        )
    say("profiling the folds in one process")
    stages = _profile(settings, sample[: sizes.profile_events])
    throughput = BenchResult(
        bench="pipeline",
        baseline=Measurement("bare aiokafka consume + decode", bare_rate, 3, len(records)),
        contenders=[
            Measurement("factorstream worker (all agents, RocksDB)", worker_rate, 1, len(records)),
            *(
                Measurement(FLOOR_NAMES[mode], rate, 1, len(records))
                for mode, rate in zip(MODES, floors, strict=True)
            ),
        ],
        goal_ratio=0.5,
        goal_text="worker ≥ 0.5× bare consume + decode",
        notes={
            "events": f"{len(records):,} synthetic sign-in events, 6 partitions, 5,000 subjects",
            "profile (pure folds, one process)": stages,
            "records the worker wrote per event": f"{hops:.1f} (forwards, re-keys, changelogs,"
            " derived events, checkpoints): each is a Faust send, whose cost the floors show",
            "broker": broker,
        },
    )
    return [throughput, *(_latency_result(*measured) for measured in probed)]


def _latency_result(
    rate: int, latencies: list[float], timeouts: int, achieved: float
) -> BenchResult:
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    return BenchResult(
        bench="pipeline-latency",
        baseline=Measurement("goal: p99 ≤ 50 ms (as a rate: 20/s)", 1000 / 50, 1, 0),
        contenders=[Measurement("p99 failure → lockout API shows it (1/s)", 1000 / p99, 1, 0)],
        goal_ratio=1.0,
        goal_text=f"p99 ≤ 50 ms under {rate:,} events/s of background traffic",
        unit="1 / latency (s⁻¹)",
        notes={
            "probes": f"{len(latencies)} (timed out after 30 s: {timeouts})"
            + (
                f"; stopped after {timeouts} timeouts in a row"
                if timeouts == len(latencies)
                else ""
            ),
            "latency ms": f"p50 {p50:.0f}, p99 {p99:.0f}, max {max(latencies):.0f}",
            "background": f"{achieved:,.0f} events/s achieved of {rate:,}",
        },
    )


# -- the worker ----------------------------------------------------------------------------


@contextlib.contextmanager
def _child(
    command: Sequence[str], env: dict[str, str], log: Path, *, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` as a child process writing to ``log``, with ``env`` added to this
    process's environment minus its ``FACTORSTREAM_`` settings; stopped (SIGTERM, then
    SIGKILL after 30 s) on leaving the block."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our modules
            list(command), env=base | env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@contextlib.contextmanager
def _worker(settings: Settings, log: Path) -> Iterator[Path]:
    command = [sys.executable, "-m", "factorstream.cli", "worker", "--loglevel", "warning"]
    with _child(command, environment(settings), log):
        yield log


def _get(port: int, path: str) -> dict[str, object] | None:
    try:
        url = f"http://127.0.0.1:{port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local http
            answer: dict[str, object] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return None


def _wait_for_api(port: int, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _get(port, "/lockouts/bench/warm-up") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _worker_round(settings: Settings, records: Sequence[Record]) -> float:
    """Events/s from the first produced event until the group committed everything."""
    app_id, names = settings.stream.app_id, settings.topics
    sources = [
        names.events,
        f"{app_id}-events-ingested",
        f"{app_id}-events-by-ip",
        f"{app_id}-events-by-tenant",
    ]
    return _timed_until_committed(settings.kafka_bootstrap, names.events, records, app_id, sources)


STALL_S = 120
"""A consumer group that commits nothing for this long has stalled: the round fails."""


def _timed_until_committed(
    bootstrap: str, topic: str, records: Sequence[Record], group: str, sources: Sequence[str]
) -> float:
    """Events/s from producing ``records`` to ``topic`` until ``group`` committed all of
    ``sources``. Polled every 0.5 s: each poll opens clients, which costs CPU the broker
    and the worker share on this machine."""
    started = time.perf_counter()
    asyncio.run(_produce(bootstrap, topic, records))
    last, progressed = None, time.monotonic()
    while (lag := group_lag(bootstrap, group, sources)) != 0:
        if lag != last:
            last, progressed = lag, time.monotonic()
        elif time.monotonic() - progressed > STALL_S:
            raise RuntimeError(f"{group} made no progress for {STALL_S} s ({lag} behind)")
        time.sleep(0.5)
    return len(records) / (time.perf_counter() - started)


def _records_written(bootstrap: str, settings: Settings) -> int:
    """Records in every topic the worker writes: its internal topics and changelogs
    (``<app_id>-…``) and the lockouts, anomalies, dead-letter and checkpoint topics."""
    names, prefix = settings.topics, f"{settings.stream.app_id}-"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        outputs = {names.lockouts, names.anomalies, names.dlq, names.checkpoints}
        topics = [t for t in admin.list_topics() if t.startswith(prefix) or t in outputs]
        return sum(end_offsets(consumer, topics).values())
    finally:
        consumer.close()
        admin.close()


# -- the Faust floor -------------------------------------------------------------------------


FLOOR_NAMES: dict[Mode, str] = {
    "decode": "Faust floor: one agent, decode only",
    "forward": "Faust floor: one agent, decode + 1 forward + 1 table write",
}


def _floor_round(
    bootstrap: str, unique: str, mode: Mode, records: Sequence[Record], workdir: Path
) -> float:
    """Events/s of a floor worker (``factorstream.bench.faust_floor``) over ``records``."""
    topic, app_id, port = (
        f"bench.pipeline.{unique}.floor-{mode}",
        f"bench-floor-{mode}-{unique}",
        free_port(),
    )
    partitions = TopicSettings().events_partitions
    # every topic before the worker starts (see streams.app.internal_topics: a topic
    # created after the consumer's first metadata stays unknown to it for minutes)
    ensure_topics(
        bootstrap,
        {name: partitions for name in (topic, *floor_internal_topics(app_id))},
    )
    env = floor_environment(
        app_id=app_id, bootstrap=bootstrap, topic=topic, partitions=partitions, mode=mode, port=port
    )
    command = [sys.executable, "-m", "faust", "-A", "factorstream.bench.faust_floor", "worker"]
    log = workdir / f"floor-{mode}.log"
    with _child([*command, "-l", "warn"], env, log, cwd=workdir) as process:
        _wait_for_web(port, process, log)
        # one record first, so the group has joined and been assigned before the clock runs
        _timed_until_committed(bootstrap, topic, records[:1], app_id, [topic])
        return _timed_until_committed(bootstrap, topic, records, app_id, [topic])


def _wait_for_web(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):  # noqa: S310 - local http
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Faust floor did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


async def _produce(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262144)
    await producer.start()
    try:
        headers = structured_headers()
        for start in range(0, len(records), 5_000):
            chunk = records[start : start + 5_000]
            sent = [
                await producer.send(topic, value=value, key=key, headers=headers)
                for key, value in chunk
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


# -- the baseline ---------------------------------------------------------------------------


async def _bare_round(bootstrap: str, topic: str, partitions: int, count: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, n) for n in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        seen, started = 0, time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    decode(message.value or b"", list(message.headers))
                seen += len(messages)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- latency under background traffic -------------------------------------------------------


GIVE_UP_AFTER = 3
"""Latency probes stop at a background rate once this many in a row timed out."""


def _latency_probes(
    settings: Settings, port: int, probes: int, rate: int
) -> tuple[list[float], int, float]:
    bootstrap, topic = settings.kafka_bootstrap, settings.topics.events
    stop = threading.Event()
    produced = [0]
    background = threading.Thread(
        target=_background, args=(bootstrap, topic, rate, stop, produced), daemon=True
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    latencies: list[float] = []
    timeouts = 0
    started = time.perf_counter()
    background.start()
    try:
        time.sleep(2)  # let the background settle
        for number in range(probes):
            if timeouts >= GIVE_UP_AFTER and timeouts == len(latencies):
                break  # the worker is not keeping up: more probes would only wait 30 s each
            subject = f"probe-{rate}-{number}"
            sent = time.perf_counter()
            failures = _failures(subject)
            at = urllib.parse.quote(failures[-1].time.isoformat())  # locked as of the last
            for event in failures:
                producer.send(
                    topic, key=kafka_key(event), value=encode(event), headers=structured_headers()
                )
            producer.flush()
            while True:
                answer = _get(port, f"/lockouts/bench/{subject}?at={at}")
                if answer is not None and answer.get("locked"):
                    latencies.append((time.perf_counter() - sent) * 1000)
                    break
                if time.perf_counter() - sent > 30:
                    timeouts += 1
                    latencies.append(30_000.0)
                    break
                time.sleep(0.002)
    finally:
        stop.set()
        background.join(timeout=30)
        producer.close()
    return latencies, timeouts, produced[0] / (time.perf_counter() - started)


def _background(
    bootstrap: str, topic: str, rate: int, stop: threading.Event, produced: list[int]
) -> None:
    """``rate`` synthetic events per second until ``stop``, in 10 ms slices."""
    events = synthetic_events(rate * 5, seed=11, subjects=5_000)
    values = [(kafka_key(e), encode(e)) for e in events]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    headers = structured_headers()
    started, index = time.perf_counter(), 0
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        while index < due:
            key, value = values[index % len(values)]
            producer.send(topic, key=key, value=value, headers=headers)
            index += 1
        time.sleep(0.01)
    producer.flush()
    producer.close()
    produced[0] = index


def _failures(subject: str) -> list[Event]:
    client = Client(ip="198.18.0.1")
    return [
        new_event(
            p.LoginAttempted(
                outcome=Outcome.FAILURE,
                method="password",
                application="bench",
                policy_tier=PolicyTier.BUSINESS,
                client=client,
            ),
            source="https://login.example.com/bench",
            tenant="bench",
            subject=subject,
            correlationid=f"{subject}-{n}",
            now=START + timedelta(seconds=10 * n),
        )
        for n in range(5)
    ]


def _percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- profile ----------------------------------------------------------------------------------


def _profile(settings: Settings, events: Sequence[Event]) -> str:
    records = [LogRecord(0, n, 0, kafka_key(e), encode(e)) for n, e in enumerate(events)]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    replay_settings(records, settings, stage_seconds=seconds)
    total = time.perf_counter() - started
    parts = ", ".join(
        f"{name} {share / total:.0%}"
        for name, share in sorted(seconds.items(), key=lambda i: -i[1])
    )
    return f"{len(records) / total:,.0f} events/s in one process; {parts}"

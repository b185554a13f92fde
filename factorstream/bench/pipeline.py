"""``bench pipeline``: the stream worker beside the fold floor and a bare consumer.

* **Throughput.** A real ``factorstream worker --role folds`` process (its own consumer
  group, RocksDB tables, the engine: ingest, subjects, IPs, tenants) is started and
  waited for; then the events are produced as fast as the producer goes, and the clock
  stops when the worker's group has committed everything on the events, ingested and
  re-keyed topics. Its CPU time over the round (from ``/proc``) gives µs per event.
  Beside it: the **fold floor** (the same folds in one process over the same events,
  each decoded once, state as live objects, no Kafka and no writes) and a bare aiokafka
  consumer that reads the same topic and decodes every record, nothing else.
* **Two workers**: the same round with two worker processes in one group (fresh topics).
* **Sinks apart**: ``factorstream sink ledger`` and ``sink lake``, each its own process
  and consumer group, over everything the worker wrote (events, lockouts, anomalies),
  beside their own benchmark's work in one process: ``Ledger.append`` in batches of
  2,000 (``bench ledger``) and ``LakeWriter.write`` in files of ``lake.batch_rows`` rows
  (``bench analytics``' ingest), over the same events.
* **Latency.** Under a steady background of synthetic traffic, each probe produces five
  failed sign-ins of a fresh business-tier subject (five lock it) and polls the lockout
  API until it answers ``locked`` as of the last failure's time: the time from producing
  to seeing the lock. Measured under the goal's 2,000 events/s and under a light
  50 events/s.
* **Where the time goes.** The stages in one process without Kafka
  (``streams/replay.py``), timed per stage, and the records the worker wrote per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
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
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from analytics.lake import LakeWriter
from analytics.tables import flatten
from audit.ledger import open_ledger
from factorstream.bench import BenchResult, Measurement, percentile
from factorstream.bench.broker import broker_for
from factorstream.bench.events import START, synthetic_events
from factorstream.bench.http_load import cpu_seconds, machine_cpu_seconds
from factorstream.localkafka import ensure_pipeline_topics, free_port
from factorstream.settings import Settings, StreamSettings, TopicSettings, environment
from factorstream.stream_config import replay_settings, settings_topology
from schemas import Event, decode, encode, kafka_key, new_event
from schemas import payloads as p
from schemas.codec import structured_headers
from schemas.fields import Client, Outcome, PolicyTier
from streams.replay import TopicRecord
from streams.topic_reading import end_offsets, group_lag, read_to_end
from verifiers.kafka_connection import KafkaConnection, aiokafka_config, kafka_python_config

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
    sample = synthetic_events(sizes.events, subjects=max(1, sizes.events // 40))
    records = [(kafka_key(e), encode(e)) for e in sample]
    with broker_for(settings, bootstrap) as on_broker, tempfile.TemporaryDirectory() as tmp:
        work, broker = Path(tmp), on_broker.kafka()
        one = _bench_settings(on_broker, work / "one", "one")
        with _worker(one, work / "worker.log") as (process, log):
            say("starting the worker (folds)")
            _wait_for_api(one.stream.web_port, log)
            say(f"producing {len(records):,} events; waiting for the worker to commit them all")
            before, machine = cpu_seconds(process.pid), machine_cpu_seconds()
            started = time.perf_counter()
            worker_rate = _worker_round(one, records)
            elapsed = time.perf_counter() - started
            worker_cpu = cpu_seconds(process.pid) - before
            cpu_us = worker_cpu / len(records) * 1e6
            busy = (machine_cpu_seconds() - machine) / elapsed
            hops = _records_written(broker, one) / len(records)
            say(f"worker: {worker_rate:,.0f} events/s; latency probes under background traffic")
            probed = [
                (rate, *_latency_probes(one, one.stream.web_port, sizes.probes, rate))
                for rate in sizes.background_per_s
            ]
        sinks = []
        for name in ("ledger", "lake"):
            say(f"the {name} sink as its own process, over everything the worker wrote")
            sinks.append(_sink_round(one, name, work / f"sink-{name}.log"))
        output = _worker_output(broker, one)
        say("two workers in one group")
        two = _bench_settings(on_broker, work / "two", "two")
        two_rate, two_busy = _two_workers_round(two, records, work)
        say("bare aiokafka consume + decode, 3 rounds")
        bare_rate = max(
            asyncio.run(
                _bare_round(broker, one.topics.events, one.topics.events_partitions, len(records))
            )
            for _ in range(3)
        )
    say("the fold floor and the sinks' own work, in one process")
    floor_rate, floor_us = fold_floor(settings, records)
    baselines = [_ledger_baseline(output, work_root=None), _lake_baseline(settings, output)]
    stages = _profile(settings, sample[: sizes.profile_events])
    throughput = BenchResult(
        bench="pipeline",
        baseline=Measurement(
            "fold floor: the folds in one process, no Kafka", floor_rate, 1, len(records)
        ),
        contenders=[
            Measurement("factorstream worker (folds, RocksDB)", worker_rate, 1, len(records)),
            Measurement("bare aiokafka consume + decode", bare_rate, 3, len(records)),
        ],
        goal_ratio=0.5,
        goal_text="worker ≥ 0.5× the fold floor and ≥ 5,000 events/s",
        notes={
            "events": f"{len(records):,} synthetic sign-in events, 6 partitions, "
            f"{max(1, sizes.events // 40):,} subjects (40 events each)",
            "worker CPU": f"{cpu_us:,.0f} µs/event (the fold floor: {floor_us:,.0f})",
            "worker ≥ 5,000 events/s": "yes" if worker_rate >= 5_000 else "no",
            "cores busy during the one-worker round": f"{busy:.2f} of {os.cpu_count()} "
            f"(the worker {worker_cpu / elapsed:.2f}; the rest: the broker, this benchmark's "
            "producer and polling, anything else on the machine): what is left is all a "
            "second worker can add",
            "records the worker wrote per event": f"{hops:.2f} (forwards, re-keys, "
            "changelogs, derived events, dead letters)",
            "profile (the stages in one process, no Kafka)": stages,
            "broker": broker.bootstrap,
        },
    )
    scaling = BenchResult(
        bench="pipeline-two-workers",
        baseline=Measurement("one worker", worker_rate, 1, len(records)),
        contenders=[Measurement("two workers, one group", two_rate, 1, len(records))],
        goal_ratio=1.4,
        goal_text="two workers ≥ 1.4× one (2 cores, shared with the broker and the producer)",
        notes={
            "cores busy": f"{two_busy:.2f} of {os.cpu_count()} during the two-worker round, "
            f"{busy:.2f} during the one-worker round",
        },
    )
    sink_results = [
        BenchResult(
            bench=f"pipeline-sink-{name}",
            baseline=Measurement(baseline_name, baseline_rate, 1, len(output)),
            contenders=[Measurement(f"factorstream sink {name} (own process)", rate, 1, count)],
            goal_ratio=0.5,
            goal_text=f"the {name} sink ≥ 0.5× its own benchmark's rate",
        )
        for (name, rate, count), (baseline_name, baseline_rate) in zip(
            sinks, baselines, strict=True
        )
    ]
    return [
        throughput,
        scaling,
        *sink_results,
        *(_latency_result(*measured) for measured in probed),
    ]


def _bench_settings(settings: Settings, data: Path, name: str) -> Settings:
    """Settings of a worker with its own topics, app id, port and data directory."""
    unique = f"{uuid.uuid4().hex[:8]}-{name}"
    topics = TopicSettings.under(f"bench.pipeline.{unique}")
    ensure_pipeline_topics(settings.kafka(), topics)
    data.mkdir(parents=True, exist_ok=True)
    stream = StreamSettings(
        app_id=f"bench-pipeline-{unique}",
        web_port=free_port(),
        standby_replicas=0,
        roles=("folds",),
    )
    return settings.model_copy(update={"data_dir": data, "topics": topics, "stream": stream})


def _latency_result(
    rate: int, latencies: list[float], timeouts: int, achieved: float
) -> BenchResult:
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
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
def _worker(
    settings: Settings, log: Path, command: Sequence[str] = ("worker",)
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    cli = [sys.executable, "-m", "factorstream.cli", *command, "--loglevel", "warning"]
    with _child(cli, environment(settings), log) as process:
        yield process, log


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
        f"{app_id}-events-by-subject",
        f"{app_id}-events-by-ip",
        f"{app_id}-events-by-tenant",
    ]
    return _timed_until_committed(settings.kafka(), names.events, records, app_id, sources)


STALL_S = 120
"""A consumer group that commits nothing for this long has stalled: the round fails."""


def _timed_until_committed(
    kafka: KafkaConnection,
    topic: str,
    records: Sequence[Record],
    group: str,
    sources: Sequence[str],
) -> float:
    """Events/s from producing ``records`` to ``topic`` until ``group`` committed all of
    ``sources``. Polled every 0.5 s: each poll opens clients, which costs CPU the broker
    and the worker share on this machine."""
    started = time.perf_counter()
    asyncio.run(produce_records(kafka, topic, records))
    last, progressed = None, time.monotonic()
    while (lag := group_lag(kafka, group, sources)) != 0:
        if lag != last:
            last, progressed = lag, time.monotonic()
        elif time.monotonic() - progressed > STALL_S:
            raise RuntimeError(f"{group} made no progress for {STALL_S} s ({lag} behind)")
        time.sleep(0.5)
    return len(records) / (time.perf_counter() - started)


def _records_written(kafka: KafkaConnection, settings: Settings) -> int:
    """Records in every topic the worker writes: its internal topics and changelogs
    (``<app_id>-…``) and the lockouts, anomalies, dead-letter and checkpoint topics."""
    names, prefix = settings.topics, f"{settings.stream.app_id}-"
    admin = KafkaAdminClient(**kafka_python_config(kafka))
    consumer = KafkaConsumer(**kafka_python_config(kafka))
    try:
        outputs = {names.lockouts, names.anomalies, names.dlq, names.checkpoints}
        topics = [t for t in admin.list_topics() if t.startswith(prefix) or t in outputs]
        return sum(end_offsets(consumer, topics).values())
    finally:
        consumer.close()
        admin.close()


# -- two workers, the sinks apart --------------------------------------------------------


def _two_workers_round(
    settings: Settings, records: Sequence[Record], work: Path
) -> tuple[float, float]:
    """Events/s of two worker processes in one group (each its own port and data), and
    how many of the machine's cores were busy meanwhile."""
    second = settings.model_copy(
        update={
            "data_dir": settings.data_dir / "b",
            "stream": settings.stream.model_copy(update={"web_port": free_port()}),
        }
    )
    changelog = f"{settings.stream.app_id}-subjects-changelog"
    with (
        _worker(settings, work / "two-a.log") as (_, log_a),
        _worker(second, work / "two-b.log") as (_, log_b),
    ):
        ports = (settings.stream.web_port, second.stream.web_port)
        for port, log in zip(ports, (log_a, log_b), strict=True):
            _wait_for_api(port, log)
        deadline = time.monotonic() + 120
        while any(len(_owners(port, changelog)) < 2 for port in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the two workers never shared the partitions")
            time.sleep(0.5)
        try:
            machine, started = machine_cpu_seconds(), time.perf_counter()
            rate = _worker_round(settings, records)
            return rate, (machine_cpu_seconds() - machine) / (time.perf_counter() - started)
        except RuntimeError as error:  # a stall: what each worker said is the evidence
            tails = "\n".join(
                f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}"
                for log in (log_a, log_b)
            )
            raise RuntimeError(f"{error}\n{tails}") from error


def _owners(port: int, table: str) -> set[str]:
    """The workers a worker knows to own some partition of ``table``'s changelog."""
    found = _get(port, "/lockouts/_owners") or {}
    return {
        host for host, topics in found.items() if isinstance(topics, dict) and topics.get(table)
    }


def _sink_topics(settings: Settings) -> list[str]:
    names = settings.topics
    return [f"{settings.stream.app_id}-events-ingested", names.lockouts, names.anomalies]


def _sink_round(settings: Settings, name: str, log: Path) -> tuple[str, float, int]:
    """A sink process over the backlog the worker wrote: (name, events/s, events), timed
    from the group's first commit to its last (not its start-up)."""
    kafka, group = settings.kafka(), f"{settings.stream.app_id}-{name}"
    topics = _sink_topics(settings)
    with _worker(settings, log, ("sink", name)) as (process, _):
        launched = time.perf_counter()
        first: tuple[float, int] | None = None
        total: int | None = None
        deadline = time.monotonic() + 600
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {name} sink stopped or stalled:\n{log.read_text()[-3000:]}"
                )
            lag = group_lag(kafka, group, topics)
            now = time.perf_counter()
            if lag is not None:
                if total is None:
                    total = sum(end_offsets_of(kafka, topics))
                if first is None and lag < total:
                    first = (now, lag)
                if lag == 0 and first is not None:
                    started, backlog = first
                    if backlog == 0:  # done within its first commit: count from its start
                        started, backlog = launched, total
                    return name, backlog / max(now - started, 1e-9), total
            time.sleep(0.25)


def end_offsets_of(kafka: KafkaConnection, topics: Sequence[str]) -> list[int]:
    consumer = KafkaConsumer(**kafka_python_config(kafka))
    try:
        return list(end_offsets(consumer, topics).values())
    finally:
        consumer.close()


def _worker_output(kafka: KafkaConnection, settings: Settings) -> list[bytes]:
    """Every event the sinks read: what the worker forwarded and derived."""
    values: list[bytes] = []
    for topic in _sink_topics(settings):
        values += [r.value for r in read_to_end(kafka, topic) if r.value is not None]
    return values


def _ledger_baseline(values: Sequence[bytes], *, work_root: Path | None) -> tuple[str, float]:
    """``bench ledger``'s work: ``Ledger.append`` of the decoded events, 2,000 a batch."""
    events = [decode(v) for v in values]
    with tempfile.TemporaryDirectory(dir=work_root) as tmp:
        ledger = open_ledger(
            url=f"sqlite:///{Path(tmp) / 'ledger.db'}",
            signing_key_file=Path(tmp) / "signing.pem",
            master_key_file=Path(tmp) / "master.key",
        )
        started = time.perf_counter()
        for start in range(0, len(events), 2_000):
            ledger.append(events[start : start + 2_000], now=START)
        elapsed = time.perf_counter() - started
    return "Ledger.append in one process, 2,000 a batch (bench ledger)", len(events) / elapsed


def _lake_baseline(settings: Settings, values: Sequence[bytes]) -> tuple[str, float]:
    """``bench analytics``' ingest: the events flattened and written, batch_rows a file."""
    events = [decode(v) for v in values]
    rows = settings.lake.batch_rows
    with tempfile.TemporaryDirectory() as tmp:
        writer = LakeWriter(Path(tmp) / "lake")
        started = time.perf_counter()
        for start in range(0, len(events), rows):
            writer.write(flatten(events[start : start + rows]))
        elapsed = time.perf_counter() - started
    return f"LakeWriter.write in one process, {rows:,} rows a file (bench analytics)", len(
        events
    ) / elapsed


def fold_floor(settings: Settings, records: Sequence[Record]) -> tuple[float, float]:
    """Events/s and CPU µs/event of every fold in one process: each record decoded once,
    state as live objects, no Kafka, no writes (the worker's folds: streams.topology)."""
    stages = settings_topology(settings)
    folds = [fold for stage in stages.stages for fold in stage.folds]
    states: list[dict[str, Any]] = [{} for _ in folds]
    started = time.process_time()
    for _, value in records:
        event = decode(value)
        for fold, table in zip(folds, states, strict=True):
            key = fold.key(event)
            if key is None:
                continue
            state = table.get(key)
            if state is None:
                state = fold.empty()
            new, _derived = fold.fold(state, event)
            if new is not state:
                table[key] = new
    cpu = time.process_time() - started
    return len(records) / cpu, cpu / len(records) * 1e6


async def produce_records(kafka: KafkaConnection, topic: str, records: Sequence[Record]) -> None:
    """``records`` (key, value) to ``topic`` in structured mode, every one acknowledged."""
    producer = AIOKafkaProducer(**aiokafka_config(kafka), linger_ms=20, max_batch_size=262144)
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


async def _bare_round(kafka: KafkaConnection, topic: str, partitions: int, count: int) -> float:
    consumer = AIOKafkaConsumer(**aiokafka_config(kafka), enable_auto_commit=False)
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
    kafka, topic = settings.kafka(), settings.topics.events
    stop = threading.Event()
    produced = [0]
    background = threading.Thread(
        target=_background, args=(kafka, topic, rate, stop, produced), daemon=True
    )
    producer = KafkaProducer(**kafka_python_config(kafka), linger_ms=0)
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
    kafka: KafkaConnection, topic: str, rate: int, stop: threading.Event, produced: list[int]
) -> None:
    """``rate`` synthetic events per second until ``stop``, in 10 ms slices."""
    events = synthetic_events(rate * 5, seed=11, subjects=5_000)
    values = [(kafka_key(e), encode(e)) for e in events]
    producer = KafkaProducer(**kafka_python_config(kafka), linger_ms=5)
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


# -- profile ----------------------------------------------------------------------------------


def _profile(settings: Settings, events: Sequence[Event]) -> str:
    records = [
        TopicRecord(0, n, int(e.time.timestamp() * 1000), kafka_key(e), encode(e))
        for n, e in enumerate(events)
    ]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    replay_settings(records, settings, stage_seconds=seconds)
    total = time.perf_counter() - started
    parts = ", ".join(
        f"{name} {share / total:.0%}"
        for name, share in sorted(seconds.items(), key=lambda i: -i[1])
    )
    return f"{len(records) / total:,.0f} events/s in one process; {parts}"

"""``factorstream worker`` and ``factorstream sink``: run the stream worker, or a sink alone.

``worker`` runs every role by default (the folds, the ledger and the lake sinks: one
process, one consumer group); ``worker --role folds`` runs the folds alone, and
``sink ledger`` / ``sink lake`` run a sink in its own process and consumer group
(``<app_id>-ledger``, ``<app_id>-lake``), to scale and fail apart from the folds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from schemas.extras import require_extra

require_extra("streams")  # the worker's part first: its other imports need the same extra

import typer
from kafka.errors import KafkaError
from rich.markup import escape

from factorstream.cli.context import console, fail, settings_of
from factorstream.localkafka import (
    KafkaUnavailable,
    admin_client,
    ensure_pipeline_topics,
    ensure_topics,
    topic_partitions,
)
from factorstream.retention_config import align_topic_retention, topic_retention_configs
from factorstream.settings import Settings
from verifiers.kafka_connection import KafkaConnection

if TYPE_CHECKING:
    from streams.app import TopicSpec
    from streams.sink_host import BatchDone, SinkProgress
    from streams.sinks import LakeSink, LedgerSink

_TOPIC_ALREADY_EXISTS = 36


ROLES = ("folds", "ledger", "lake")
Role = typer.Option(
    [],
    "--role",
    help="Run only this role (repeat for several): folds, ledger, lake. Default: the "
    "setting stream.roles (all three).",
)
LogLevel = typer.Option("info", help="Log level: debug, info, warning, error.")


def worker(ctx: typer.Context, role: list[str] = Role, loglevel: str = LogLevel) -> None:
    """Run the stream worker until stopped (SIGINT/SIGTERM); creates missing topics first."""
    settings = settings_of(ctx)
    unknown = sorted(set(role) - set(ROLES))
    if unknown:
        raise fail(f"--role: unknown {', '.join(unknown)} (choose from {', '.join(ROLES)})")
    if role:
        stream = settings.stream.model_copy(update={"roles": tuple(dict.fromkeys(role))})
        settings = settings.model_copy(update={"stream": stream})
    _run(settings, loglevel)


def sink(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="ledger or lake"),
    loglevel: str = LogLevel,
) -> None:
    """Run one sink (ledger or lake) in its own process and consumer group until stopped
    (SIGINT, SIGTERM, SIGHUP: the batch in hand is written and committed first)."""
    if name not in ("ledger", "lake"):
        raise fail(f"sink: expected ledger or lake, found {name!r}")
    settings = settings_of(ctx)
    logging.basicConfig(
        level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    from streams.app import INGESTED_SUFFIX
    from streams.noise import limit_kafka_client_logs

    names, kafka = settings.topics, settings.kafka()
    ingested = f"{settings.stream.app_id}-{INGESTED_SUFFIX}"
    topics = [ingested, names.lockouts, names.anomalies]
    try:
        ensure_pipeline_topics(kafka, names)
        ensure_topics(kafka, {ingested: names.events_partitions})  # as the worker makes it
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    group = f"{settings.stream.app_id}-{name}"
    console.print(
        f"sink [bold]{group}[/] on {kafka.describe()}: every event of {', '.join(topics)}"
        f"{_probes_note(settings)}"
    )
    limit_kafka_client_logs()
    asyncio.run(_serve_sink(settings, name, group, topics))


def _probes_note(settings: Settings) -> str:
    port = settings.stream.probes_port
    if port is None:
        return " (no probes: stream.probes_port unset)"
    return f"; probes and metrics at http://{settings.stream.probes_host}:{port}/ready, /metrics"


def _sink_probes(
    settings: Settings, name: str, sink: LedgerSink | LakeSink, progress: SinkProgress
) -> tuple[contextlib.AbstractContextManager[object], BatchDone | None]:
    """``/health``, ``/ready`` and ``/metrics`` of ``factorstream sink NAME`` on
    ``stream.probes_port`` (unset: nothing served, nothing counted), and what counts each
    batch. Ready: a broker answers, partitions are assigned, and the ledger's database
    answers (sink ``ledger``)."""
    from factorstream.metrics import ProbeServer, broker_answers, database_answers, metrics_registry

    port = settings.stream.probes_port
    if port is None:
        return contextlib.nullcontext(), None
    registry = metrics_registry()
    on_batch: BatchDone | None = None
    if registry is not None:
        from streams.metrics import StreamMetrics

        metrics = StreamMetrics(registry)
        metrics.consumer(progress.partition_offsets, lambda: ())  # it never holds a commit
        sink.measure_with(metrics)

        def on_batch(counts: dict[str, int], started: float, oldest_s: float | None) -> None:
            metrics.batch_done(name, counts, started, oldest_s)

    servers = settings.kafka().servers
    database = database_answers(settings.ledger_database_url()) if name == "ledger" else None

    def ready() -> dict[str, bool]:
        checks = {
            "broker": broker_answers(servers),
            "partitions_assigned": progress.partitions_assigned,
        }
        if database is not None:
            checks["database"] = database()
        return checks

    server = ProbeServer(settings.stream.probes_host, port, ready=ready, registry=registry)
    return server, on_batch


async def _serve_sink(settings: Settings, name: str, group: str, topics: list[str]) -> None:
    from aiokafka import AIOKafkaProducer

    from analytics.sink import COMPACTION_INTERVAL_S, maintain_lake
    from factorstream.retention_config import days
    from factorstream.stream_config import ledger_of
    from streams.sink_host import SinkProgress, Timer, run_sink
    from streams.sinks import RETENTION_INTERVAL_S, LakeSink, LedgerSink
    from verifiers.kafka_connection import aiokafka_config

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    kafka = settings.kafka()
    async with contextlib.AsyncExitStack() as stack:
        sink: LedgerSink | LakeSink
        if name == "ledger":
            producer = AIOKafkaProducer(
                acks="all", enable_idempotence=True, **aiokafka_config(kafka)
            )
            await producer.start()
            stack.push_async_callback(producer.stop)
            checkpoints = settings.topics.checkpoints

            async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
                await producer.send_and_wait(checkpoints, value, key=key, headers=headers)

            ledger = LedgerSink(
                ledger_of(settings),
                send=send,
                batch_size=settings.ledger.batch_size,
                keep_personal=days(settings.retention.ledger_personal_days),
            )
            sink, batch = ledger, settings.ledger.batch_size
            timers = [Timer(ledger.tick_every_s or 60.0, ledger.tick)]
            if ledger.keep_personal is not None:
                timers.append(Timer(RETENTION_INTERVAL_S, ledger.apply_retention))
        else:
            lake = settings.lake

            async def compaction() -> None:
                await asyncio.to_thread(
                    maintain_lake,
                    settings.lake_path(),
                    min_files=lake.compact_min_files,
                    keep=days(settings.retention.lake_days),
                    now=datetime.now(UTC),
                )

            sink, batch = (
                LakeSink(settings.lake_path(), batch_rows=lake.batch_rows),
                lake.batch_rows,
            )
            timers = [Timer(COMPACTION_INTERVAL_S, compaction, due=time.monotonic() + 60)]
        progress = SinkProgress()
        probes, on_batch = _sink_probes(settings, name, sink, progress)
        stack.enter_context(probes)
        await run_sink(
            sink,
            kafka=kafka,
            group=group,
            topics=topics,
            max_records=batch,
            stop=stop,
            timers=timers,
            session_timeout_s=settings.stream.session_timeout_s,
            progress=progress,
            on_batch=on_batch,
        )


def _run(settings: Settings, loglevel: str) -> None:
    import faust  # the worker's heavy imports, kept off every other command's start

    from factorstream.metrics import metrics_registry
    from factorstream.stream_config import pipeline_config
    from streams.app import create_pipeline, internal_topics
    from streams.engine import tune_collector
    from streams.noise import limit_kafka_client_logs

    try:  # the key, token and IP list files a role reads
        config = pipeline_config(settings)
    except ValueError as error:
        raise fail(str(error)) from None
    pipeline = create_pipeline(config, registry=metrics_registry())
    try:
        _check_events_topic(settings)
        created = _create_internal_topics(settings.kafka(), internal_topics(pipeline))
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    _align_retention(settings)
    stream, names = settings.stream, settings.topics
    roles = ", ".join(stream.roles)
    if "folds" in stream.roles:
        console.print(
            f"worker [bold]{stream.app_id}[/] ({roles}) on {settings.kafka().describe()}: "
            f"{names.events} → {names.lockouts}, dead letters to {names.dlq} "
            f"({len(created)} internal topics created); "
            f"lockout API on http://{stream.web_host}:{stream.web_port}/lockouts/, "
            "probes and metrics at /health, /ready, /metrics"
        )
    else:
        console.print(
            f"sink [bold]{pipeline.app.conf.id}[/] ({roles}) on {settings.kafka().describe()}: "
            f"every event of {pipeline.ingested.get_topic_name()}, {names.lockouts} and "
            f"{names.anomalies}{_probes_note(settings)}"
        )
    (settings.data_dir / "streams").mkdir(parents=True, exist_ok=True)  # Faust makes one level
    runner = faust.Worker(pipeline.app, loglevel=loglevel)
    # Faust stops gracefully on SIGINT and SIGTERM; SIGHUP does the same here
    runner.loop.add_signal_handler(signal.SIGHUP, runner._on_sigterm)
    # at warning and above Faust adds a terminal spinner and sets the root logger to DEBUG
    # for it: every debug call of Faust and aiokafka then builds a log record (~5% CPU)
    runner.spinner = None
    limit_kafka_client_logs()  # a broker gone: one line per kind every 30 s, not 75 a second
    tune_collector()
    runner.execute_from_commandline()


def _align_retention(settings: Settings) -> None:
    """Put the retention policy in force on the pipeline's topics (docs/retention.md),
    saying what differed. A principal not allowed to alter topic configs (a cluster with
    ACLs, where an administrator owns the topics) is told so and the worker starts."""
    try:
        drifted = align_topic_retention(settings)
    except (KafkaUnavailable, KafkaError) as error:
        reason = (
            "this principal may not alter topic configs"
            if "Authorization" in str(error)
            else escape(str(error))
        )
        console.print(
            f"[yellow]retention not checked on the topics[/] ({reason}): an administrator "
            "sets it with `factorstream kafka topics` or `factorstream retention apply`"
        )
        return
    for line in drifted:
        console.print(f"retention: {escape(line)}")


def _check_events_topic(settings: Settings) -> None:
    """Create the pipeline's topics; the events topic must have the configured partitions."""
    names = settings.topics
    ensure_pipeline_topics(settings.kafka(), names, retention=topic_retention_configs(settings))
    found = topic_partitions(settings.kafka()).get(names.events)
    if found != names.events_partitions:  # the tables are co-partitioned with it
        raise KafkaUnavailable(
            f"topic {names.events} has {found} partitions, the settings say "
            f"{names.events_partitions} (FACTORSTREAM_TOPICS__EVENTS_PARTITIONS)"
        )


def _create_internal_topics(kafka: KafkaConnection, specs: Mapping[str, TopicSpec]) -> list[str]:
    """Create the missing internal topics with Faust's configs; returns those created."""
    try:
        with admin_client(kafka) as client:
            existing = set(client.list_topics())
            wanted = {
                name: {
                    "num_partitions": spec.partitions,
                    "replication_factor": -1,
                    "configs": dict(spec.configs),
                }
                for name, spec in specs.items()
                if name not in existing
            }
            if not wanted:
                return []
            result = client.create_topics(wanted, raise_errors=False, wait_for_metadata=True)
    except KafkaError as error:
        raise KafkaUnavailable(f"creating internal topics failed: {error}") from error
    failed = [
        f"{topic['name']}: {topic.get('error_message') or topic['error_code']}"
        for topic in result["topics"]
        if topic["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise KafkaUnavailable(f"creating internal topics failed: {'; '.join(failed)}")
    return sorted(wanted)

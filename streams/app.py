"""The Faust app: topics and tables declared once, the engine and the sinks wired, the API.

Every topic carries raw bytes: our codec (``schemas``) encodes and decodes events, never
Faust's models. The stages and the sinks run in the engine, a fetched batch at a time
(``streams/engine.py``); the roles of :class:`PipelineConfig` pick what a process runs (a
sink alone is its own consumer group). Every table and internal topic has the events
topic's partition count, so a key's table partition is its topic partition. The app's
Kafka consumer (``streams/consumer.py``) delivers each partition without holes and never
commits over a record not yet acknowledged. The data flow, topic by topic:
docs/stream-engine.md#the-app-topics-and-tables.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from faust.types import TableT, TopicT
from faust.types.auth import CredentialsT
from mode.utils.times import want_seconds

from analytics.retention import Expired
from analytics.sink import attach_lake_compaction
from audit.ledger import Ledger
from schemas import Event
from streams.api import register_ip_block_api, register_lockout_api, register_owners_api
from streams.consumer import App
from streams.engine import Engine, KeyedRunner, SubjectsRunner
from streams.faust_fence import check_faust
from streams.probes import held_commits, partition_offsets, register_probes
from streams.produce import partition_for
from streams.sinks import LakeRunner, LedgerRunner
from streams.stages import (
    ANOMALIES,
    BY_IP,
    BY_SUBJECT,
    BY_TENANT,
    DLQ,
    INGESTED,
    LOCKOUTS,
    Ingest,
    JsonState,
)
from streams.topology import Topology
from verifiers.kafka_connection import KafkaConnection, ssl_context

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

RECORD_BATCH_BYTES = 512 * 1024
"""Largest record batch the engine sends (under the broker's default 1 MiB message limit)."""
FOLDS, LEDGER, LAKE = "folds", "ledger", "lake"
"""The roles a worker process can run (``stream.roles``)."""
INGESTED_SUFFIX = "events-ingested"
REKEYED_INFIX = "events-by-"


@dataclass(frozen=True)
class Pipeline:
    """The app and what it declared, for the worker, the API and the tests."""

    app: faust.App
    engine: Engine
    events: TopicT
    ingested: TopicT
    dlq: TopicT
    lockouts: TopicT
    anomalies: TopicT
    rekeyed: Mapping[str, TopicT]
    """Internal topics re-keyed by subject (events keyed otherwise by their producer), by IP
    and by tenant, by kind of key (``subject``, ``ip``, ``tenant``)."""
    tables: Mapping[str, TableT[bytes, JsonState]]
    """The stage tables (``subjects``, ``ips``, ``tenants``; none in a sink process)."""


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic: partitions and topic configs."""

    partitions: int
    configs: Mapping[str, str]


def internal_topics(pipeline: Pipeline) -> dict[str, TopicSpec]:
    """The internal topics Faust creates as it starts, with the configs it would give them.

    The ingested and re-keyed topics and every table's changelog. Create them *before*
    the worker: Faust declares them just before its consumer subscribes, and the first
    group assignment then skips a topic missing from the consumer's (stale) metadata, for
    up to ``metadata.max.age.ms`` (5 minutes) — seen on a local Kafka 4.1 broker.
    """
    topics = [
        pipeline.ingested,
        *pipeline.rekeyed.values(),
        *(t.changelog_topic for t in pipeline.app.tables.values()),
    ]
    specs: dict[str, TopicSpec] = {}
    for topic in topics:
        policy = ",".join(
            flag for flag, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on
        )
        configs = {"cleanup.policy": policy} if policy else {}
        if topic.retention:
            configs["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        configs.update({k: str(v) for k, v in (topic.config or {}).items()})
        partitions = topic.partitions or pipeline.app.conf.topic_partitions
        specs[topic.get_topic_name()] = TopicSpec(partitions, configs)
    return specs


@dataclass(frozen=True)
class FoldsRole:
    """Ingest, the keyed stages and the lockout API (role ``folds``)."""

    stages: Topology
    enrich: Callable[[Event], Event] | None = None
    max_ahead: timedelta | None = None
    """Ingest refuses events dated this far after their record (``None``: no check)."""
    control_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    """The keys (by key id) whose signed control events ingest accepts."""
    cache_keys: int = 100_000
    api_token: str | None = None
    """The bearer token the lockout API requires (``None``: none)."""


@dataclass(frozen=True)
class LedgerRole:
    """The ledger sink (role ``ledger``)."""

    open_ledger: Callable[[], Ledger]
    batch_size: int
    keep_personal: timedelta | None = None
    """Retention: entries' personal data is shredded after this (``None``: kept)."""


@dataclass(frozen=True)
class LakeRole:
    """The lake sink and its compaction (role ``lake``)."""

    path: Path
    batch_rows: int
    compact_min_files: int
    keep: timedelta | None = None
    """Retention: partitions older than this are deleted (``None``: kept)."""


@dataclass(frozen=True)
class PipelineConfig:
    """What :func:`create_pipeline` declares and wires, as plain values (the front door
    reads them from its settings: ``factorstream.stream_config.pipeline_config``). The
    roles this process runs are the ones given (``folds``, ``ledger``, ``lake``)."""

    app_id: str
    kafka: KafkaConnection
    """The brokers and how to authenticate to them (every client of the app uses it)."""
    state_dir: Path
    """Faust's data directory (the RocksDB tables)."""
    store: str
    events: str
    events_partitions: int
    dlq: str
    lockouts: str
    anomalies: str
    checkpoints: str
    derived_partitions: int
    commit_interval_s: float
    session_timeout_s: float
    max_poll_records: int
    stall_s: float
    fetch_max_wait_ms: int
    standby_replicas: int
    web_bind: str
    web_host: str
    web_port: int
    folds: FoldsRole | None = None
    ledger: LedgerRole | None = None
    lake: LakeRole | None = None
    probes_bind: str = "127.0.0.1"
    probes_port: int | None = None
    """Without the folds: where ``/health``, ``/ready`` and ``/metrics`` are served
    (``None``: not served). With them, on the lockout API's web server."""

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, role in ((FOLDS, self.folds), (LEDGER, self.ledger), (LAKE, self.lake))
            if role is not None
        )


MIN_TOKEN_LENGTH = 24


def check_api_access(token: str | None, *, web_bind: str) -> None:
    """``ValueError`` unless the lockout API is protected: by a token of at least
    :data:`MIN_TOKEN_LENGTH` characters, or, without one, by listening on loopback only."""
    if token is None:
        if not _loopback(web_bind):
            raise ValueError(
                f"stream.web_bind is {web_bind}, not a loopback address: set "
                "stream.api_token_file, or the lockout API answers anyone who reaches it"
            )
    elif len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the lockout API token must be at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def faust_credentials(connection: KafkaConnection) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for ``connection`` (``None``: PLAINTEXT); the TLS
    context is the one every other client gets (``verifiers.kafka_connection``)."""
    context = ssl_context(connection)
    if connection.uses_sasl:
        return faust.SASLCredentials(
            username=connection.username,
            password=connection.password,
            mechanism=connection.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_pipeline(
    config: PipelineConfig, *, registry: CollectorRegistry | None = None
) -> Pipeline:
    """Declare the app, its topics and tables, and wire the engine, the sinks and the API.

    ``config``'s roles say what this process runs: the folds (ingest, the keyed stages,
    the lockout API, the probes) and/or the sinks. The stages are ``config.folds.stages``,
    the very ones the replay runs (``streams.topology``). ``registry``: the Prometheus
    registry the process's metrics go to (``streams/metrics.py``; ``None``: none).
    """
    if not config.roles:
        raise ValueError("a pipeline runs at least one role (folds, ledger, lake)")
    if config.folds is not None:
        check_api_access(config.folds.api_token, web_bind=config.web_bind)
    for warning in check_faust():
        log.warning(warning)
    partitions = config.events_partitions
    folds = config.folds is not None
    probes = folds or config.probes_port is not None  # a web server for the probes
    group = config.app_id if folds else f"{config.app_id}-{'-'.join(sorted(config.roles))}"
    app = App(
        group,
        broker=[f"kafka://{host}" for host in config.kafka.servers],
        broker_credentials=faust_credentials(config.kafka),
        store=config.store,
        datadir=str(config.state_dir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_disable_leader=True,
        broker_commit_interval=config.commit_interval_s,
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=config.session_timeout_s / 3,
        broker_max_poll_records=config.max_poll_records,
        # the engine sends whole record batches (streams/produce.py): let one hold a fetch's
        # worth of a partition's records instead of aiokafka's 16 KiB
        producer_max_batch_size=RECORD_BATCH_BYTES,
        table_standby_replicas=config.standby_replicas,
        web_enabled=probes,  # a process of sinks serves its probes alone, if any
        web_bind=config.web_bind if folds else config.probes_bind,
        web_host=config.web_host,
        web_port=config.web_port if folds else (config.probes_port or config.web_port),
        canonical_url=f"http://{config.web_host}:{config.web_port}",
        # Faust's own pages would serve raw table values (/table/) and the worker's layout
        # (/router/, statistics, the graph) to anyone who reaches the lockout API
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        autodiscover=False,
    )

    def topic(name: str, *, count: int | None = None, internal: bool = False) -> TopicT:
        found: TopicT = app.topic(
            name, key_type=bytes, value_type=bytes, partitions=count, internal=internal
        )
        return found

    derived = config.derived_partitions
    events = topic(config.events, count=partitions)
    ingested = topic(f"{config.app_id}-{INGESTED_SUFFIX}", count=partitions, internal=folds)
    rekeyed = {
        role: topic(f"{config.app_id}-{REKEYED_INFIX}{role}", count=partitions, internal=True)
        for role in (BY_SUBJECT, BY_IP, BY_TENANT)
        if folds
    }
    dlq, lockouts = topic(config.dlq, count=derived), topic(config.lockouts, count=derived)
    anomalies = topic(config.anomalies, count=derived)
    engine = app.engine = Engine(app)
    tables: dict[str, TableT[bytes, JsonState]] = {}
    if config.folds is not None:
        outputs = {
            INGESTED: ingested.get_topic_name(),
            DLQ: config.dlq,
            LOCKOUTS: config.lockouts,
            ANOMALIES: config.anomalies,
            **{role: t.get_topic_name() for role, t in rekeyed.items()},
        }
        tables = _add_folds(app, config.folds, engine, events, rekeyed, outputs)
    # -- sinks: every event, raw and derived, into the ledger and the lake -----------------
    everything = app.topic(
        ingested.get_topic_name(),
        config.lockouts,
        config.anomalies,
        key_type=bytes,
        value_type=bytes,
    )
    if config.ledger is not None:
        engine.add(
            LedgerRunner(
                app,
                name=LEDGER,
                source=everything,
                ledger=config.ledger.open_ledger(),
                checkpoints=topic(config.checkpoints, count=1),
                batch_size=config.ledger.batch_size,
                keep_personal=config.ledger.keep_personal,
            )
        )
    if config.lake is not None:
        lake = config.lake
        engine.add(
            LakeRunner(
                app, name=LAKE, source=everything, lake_path=lake.path, batch_rows=lake.batch_rows
            )
        )
    app.stall_s = config.stall_s  # the consumer's stall watch (InOrderConsumer.heal)
    app.fetch_max_wait_ms = config.fetch_max_wait_ms  # (StoppingConsumerThread)
    if registry is not None:
        _add_metrics(app, engine, registry)
    if config.lake is not None:
        metrics = engine.metrics

        def expired(partitions: list[Expired]) -> None:
            if metrics is not None and partitions:
                metrics.retention_removed.labels("lake").inc(len(partitions))

        attach_lake_compaction(
            app,
            lake_path=config.lake.path,
            min_files=config.lake.compact_min_files,
            keep=config.lake.keep,
            on_expired=expired,
        )
    if probes:
        register_probes(app, engine, config.kafka, registry=registry)
    return Pipeline(app, engine, events, ingested, dlq, lockouts, anomalies, rekeyed, tables)


def _add_metrics(app: faust.App, engine: Engine, registry: CollectorRegistry) -> None:
    from streams.metrics import StreamMetrics  # the optional extra ``metrics``

    metrics = engine.metrics = StreamMetrics(registry)
    metrics.consumer(lambda: partition_offsets(app), lambda: held_commits(app))
    for runner in engine.runners.values():
        if isinstance(runner, LedgerRunner | LakeRunner):
            runner.sink.measure_with(metrics)


def _add_folds(
    app: faust.App,
    role: FoldsRole,
    engine: Engine,
    events: TopicT,
    rekeyed: Mapping[str, TopicT],
    outputs: Mapping[str, str],
) -> dict[str, TableT[bytes, JsonState]]:
    """Ingest with the subjects stage, every other keyed stage over its own table, and the
    lockout API."""
    partitions = events.partitions or 1
    ingest = Ingest(
        role.enrich,
        max_ahead=role.max_ahead,
        control_keys=role.control_keys,
        # the partition the engine's producer and Faust's table router give a key
        partition_of=lambda key: partition_for(key, partitions),
    )
    stages = role.stages
    events_name = events.get_topic_name()
    sources = {
        stages.subjects.name: app.topic(
            events_name,
            rekeyed[BY_SUBJECT].get_topic_name(),
            key_type=bytes,
            value_type=bytes,
        ),
        stages.ips.name: rekeyed[BY_IP],
        stages.tenants.name: rekeyed[BY_TENANT],
    }
    tables: dict[str, TableT[bytes, JsonState]] = {}
    for stage in stages.stages:
        # bytes keys are serialized raw: the changelog key is the source record's key, so
        # the table router hashes exactly the bytes the producer partitioned by
        table = tables[stage.name] = app.Table(
            stage.name, default=None, key_type=bytes, partitions=events.partitions
        )
        keyed: dict[str, Any] = dict(
            name=stage.name,
            stage=stage,
            table=table,
            capacity=role.cache_keys,
            source=sources[stage.name],
            topics=outputs,
        )
        if stage is stages.subjects:
            engine.add(SubjectsRunner(app, ingest=ingest, events=events_name, **keyed))
        else:
            engine.add(KeyedRunner(app, **keyed))
    token = role.api_token
    register_owners_api(app, token=token)  # routes match in the order they were added
    register_ip_block_api(app, engine.keyed(stages.ips.name), token=token)
    register_lockout_api(app, engine.keyed(stages.subjects.name), token=token)
    return tables

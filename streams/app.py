"""The Faust app: topics and tables declared once, the engine and the sinks wired, the API.

Data flow (DESIGN.md; the stages: ``streams/stages.py``, the engine: ``streams/engine.py``)::

    <topics.events> ──ingest──> <topics.dlq>                 (failures, with the reason)
                      │ decode once, enrich (streams/enrich.py)
                      └──> <app_id>-events-ingested           (internal, key = partitionkey)
                               │ subjects: dedupe by id, lockout + every per-subject
                               │ detection in one pass (table "subjects")
                               │     ──> <topics.lockouts>, <topics.anomalies>
                               ├──> <app_id>-events-by-ip      (key = client IP)
                               │      ips: password spray, IP blocks (table "ips")
                               ├──> <app_id>-events-by-tenant  (key = tenant)
                               │      tenants: SMS pumping (table "tenants")
                               └── with <topics.lockouts> and <topics.anomalies>:
                                   ledger sink (streams/sinks.py, audit/) ──> ledger
                                       database, signed checkpoints ──> <topics.checkpoints>
                                   lake sink (streams/sinks.py, analytics/) ──> <lake>/…

Every topic carries raw bytes: our codec (``schemas``) encodes and decodes events, never
Faust's models. The stages and the sinks run in the engine, a fetched batch at a time, one
batch per runner at once (``streams/engine.py``); ``stream.roles`` picks what a process
runs (a sink alone is its own consumer group). Every table and internal topic has
the events topic's partition count, so a key's table partition is its topic partition.
The app's Kafka consumer (``streams/consumer.py``) delivers each partition without holes,
hands the engine its batches, and never commits over a record not yet acknowledged.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import faust
from faust.types import TableT, TopicT
from mode.utils.times import want_seconds

from analytics.sink import attach_lake_compaction
from audit.ledger import Ledger, open_ledger
from factorstream.settings import Settings, StreamSettings
from factorstream.stream_config import enricher, settings_topology
from streams.api import register_ip_block_api, register_lockout_api, register_owners_api
from streams.consumer import App
from streams.engine import Engine, IngestRunner, KeyedRunner
from streams.faust_fence import check_faust
from streams.sinks import LakeRunner, LedgerRunner
from streams.stages import (
    ANOMALIES,
    BY_IP,
    BY_TENANT,
    DLQ,
    INGESTED,
    LOCKOUTS,
    Ingest,
    JsonState,
)

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
    """Internal topics re-keyed by IP and by tenant, by kind of key (``ip``, ``tenant``)."""
    tables: Mapping[str, TableT[bytes, JsonState]]
    """The stage tables (``subjects``, ``ips``, ``tenants``; none in a sink process)."""


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic: partitions and topic configs."""

    partitions: int
    configs: Mapping[str, str]


def internal_topics(pipeline: Pipeline) -> dict[str, TopicSpec]:
    """The internal topics Faust creates as it starts, with the configs it would give them.

    The ingested topic and every table's changelog. Create them *before* the worker: Faust
    declares them just before its consumer subscribes, and the first group assignment
    then skips a topic missing from the consumer's (stale) metadata, for up to
    ``metadata.max.age.ms`` (5 minutes) — seen on a local Kafka 4.1 broker.
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


def open_ledger_of(settings: Settings) -> Ledger:
    """The ledger the settings name, with its keys (created on first use)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_ledger(
        url=settings.ledger_database_url(),
        signing_key_file=settings.key_file(settings.ledger.signing_key_file, "ledger-signing.pem"),
        master_key_file=settings.key_file(settings.ledger.master_key_file, "ledger-master.key"),
        checkpoint_every=settings.ledger.checkpoint_every,
        checkpoint_interval_s=settings.ledger.checkpoint_interval_s,
    )


def create_app(settings: Settings) -> faust.App:
    """The worker's Faust app (``factorstream worker`` runs it)."""
    return create_pipeline(settings).app


def api_token(stream: StreamSettings) -> str | None:
    """The lockout API's bearer token (``stream.api_token_file``); ``ValueError`` when the
    file holds none, or when there is none and the API would listen beyond loopback."""
    if stream.api_token_file is None:
        if not _loopback(stream.web_bind):
            raise ValueError(
                f"stream.web_bind is {stream.web_bind}, not a loopback address: set "
                "stream.api_token_file, or the lockout API answers anyone who reaches it"
            )
        return None
    token = stream.api_token_file.read_text().strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{stream.api_token_file}: the API token must be at least {MIN_TOKEN_LENGTH} "
            "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return token


MIN_TOKEN_LENGTH = 24


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_pipeline(settings: Settings) -> Pipeline:
    """Declare the app, its topics and tables, and wire the engine, the sinks and the API.

    ``settings.stream.roles`` says what this process runs: the folds (ingest, the keyed
    stages, the lockout API) and/or the sinks. The folds, their thresholds and the dedupe
    window come from :func:`factorstream.stream_config.settings_topology`: the replay runs the very
    same stages.
    """
    for warning in check_faust():
        log.warning(warning)
    stream, names = settings.stream, settings.topics
    partitions = names.events_partitions
    roles = set(stream.roles)
    folds = FOLDS in roles
    group = stream.app_id if folds else f"{stream.app_id}-{'-'.join(sorted(roles))}"
    app = App(
        group,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        store=stream.store,
        datadir=str(settings.data_dir / "streams"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_disable_leader=True,
        broker_commit_interval=stream.commit_interval_s,
        broker_max_poll_records=stream.max_poll_records,
        # the engine sends whole record batches (streams/produce.py): let one hold a fetch's
        # worth of a partition's records instead of aiokafka's 16 KiB
        producer_max_batch_size=RECORD_BATCH_BYTES,
        table_standby_replicas=stream.standby_replicas,
        web_enabled=folds,  # a sink process serves nothing
        web_bind=stream.web_bind,
        web_host=stream.web_host,
        web_port=stream.web_port,
        canonical_url=f"http://{stream.web_host}:{stream.web_port}",
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

    derived = names.derived_partitions
    events = topic(names.events, count=partitions)
    ingested = topic(f"{stream.app_id}-{INGESTED_SUFFIX}", count=partitions, internal=folds)
    rekeyed = {
        role: topic(f"{stream.app_id}-{REKEYED_INFIX}{role}", count=partitions, internal=True)
        for role in (BY_IP, BY_TENANT)
        if folds
    }
    dlq, lockouts = topic(names.dlq, count=derived), topic(names.lockouts, count=derived)
    anomalies = topic(names.anomalies, count=derived)
    engine = app.engine = Engine(app)
    tables: dict[str, TableT[bytes, JsonState]] = {}
    if folds:
        outputs = {
            INGESTED: ingested.get_topic_name(),
            DLQ: names.dlq,
            LOCKOUTS: names.lockouts,
            ANOMALIES: names.anomalies,
            **{role: t.get_topic_name() for role, t in rekeyed.items()},
        }
        tables = _add_folds(app, settings, engine, events, ingested, rekeyed, outputs)
    # -- sinks: every event, raw and derived, into the ledger and the lake -----------------
    everything = app.topic(
        ingested.get_topic_name(), names.lockouts, names.anomalies, key_type=bytes, value_type=bytes
    )
    if LEDGER in roles:
        engine.add(
            LedgerRunner(
                app,
                name=LEDGER,
                source=everything,
                ledger=open_ledger_of(settings),
                checkpoints=topic(names.checkpoints, count=1),
                batch_size=settings.ledger.batch_size,
            )
        )
    if LAKE in roles:
        engine.add(
            LakeRunner(
                app,
                name=LAKE,
                source=everything,
                lake_path=settings.lake_path(),
                batch_rows=settings.lake.batch_rows,
            )
        )
        attach_lake_compaction(
            app, lake_path=settings.lake_path(), min_files=settings.lake.compact_min_files
        )
    return Pipeline(app, engine, events, ingested, dlq, lockouts, anomalies, rekeyed, tables)


def _add_folds(
    app: faust.App,
    settings: Settings,
    engine: Engine,
    events: TopicT,
    ingested: TopicT,
    rekeyed: Mapping[str, TopicT],
    outputs: Mapping[str, str],
) -> dict[str, TableT[bytes, JsonState]]:
    """Ingest, then every keyed stage over its own table, and the lockout API."""
    ingest = Ingest(
        enricher(settings.stream.enrich),
        max_ahead=timedelta(seconds=settings.stream.max_ahead_s),
    )
    engine.add(IngestRunner(app, name="ingest", stage=ingest, source=events, topics=outputs))
    stages = settings_topology(settings)
    sources = {
        stages.subjects.name: ingested,
        stages.ips.name: rekeyed[BY_IP],
        stages.tenants.name: rekeyed[BY_TENANT],
    }
    tables: dict[str, TableT[bytes, JsonState]] = {}
    for stage in stages.stages:
        # bytes keys are serialized raw: the changelog key is the source record's key, so
        # the table router hashes exactly the bytes the producer partitioned by
        table = tables[stage.name] = app.Table(
            stage.name, default=None, key_type=bytes, partitions=settings.topics.events_partitions
        )
        runner = KeyedRunner(
            app,
            name=stage.name,
            stage=stage,
            table=table,
            capacity=settings.stream.cache_keys,
            source=sources[stage.name],
            topics=outputs,
        )
        engine.add(runner)
    token = api_token(settings.stream)
    register_owners_api(app, token=token)  # routes match in the order they were added
    register_ip_block_api(app, engine.keyed(stages.ips.name), token=token)
    register_lockout_api(app, engine.keyed(stages.subjects.name), token=token)
    return tables

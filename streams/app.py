"""The Faust app: topics and tables declared once, agents wired, the lockout API mounted.

Data flow (DESIGN.md)::

    <topics.events> ──ingest──> <topics.dlq>                 (failures, with the reason)
                      │ dedupe by event id (windowed table "ingest-seen"),
                      │ enrich: geo/ASN from the client IP (streams/enrich.py)
                      └──> <app_id>-events-ingested           (internal, key = partitionkey)
                               ├── lockout fold (table "lockout") ──> <topics.lockouts>
                               ├── detections (one table each)   ──> <topics.anomalies>
                               ├──rekey──> <app_id>-events-by-ip / -events-by-tenant
                                             (internal, key = client IP / tenant; see
                                             streams/detection_agents.py: per-IP and
                                             per-tenant detections, "ip_block" ──>
                                             <topics.lockouts>, GET /lockouts/ip/{ip})
                               └── with <topics.lockouts> and <topics.anomalies>:
                                   ledger sink (audit/sink.py) ──> ledger database,
                                       signed checkpoints ──> <topics.checkpoints>
                                   lake sink (analytics/sink.py) ──> <lake>/<table>/date=…

Every topic carries raw bytes (``raw`` key and value serializers): our codec
(``schemas``) encodes and decodes events, never Faust's models. Agents run at
``concurrency=1`` (faust-streaming issue #606). All per-key tables and the internal topic
have the events topic's partition count, so a key's table partition is its topic partition.
The app's Kafka consumer is Faust's, made to deliver each partition without holes and
never to commit over a record the agents have not acknowledged (``streams/consumer.py``):
Faust's own can skip records after a rebalance and commit past them. Turning
``stream.in_order_delivery`` off falls back to Faust's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import faust
from faust.tables.wrappers import WindowWrapper
from faust.types import AgentT, TableT, TopicT
from mode.utils.times import want_seconds

from analytics.sink import attach_lake_compaction, attach_lake_sink
from audit.ledger import Ledger, open_ledger
from audit.sink import attach_ledger_sink
from factorstream.settings import Settings
from streams.api import register_ip_block_api, register_lockout_api
from streams.consumer import App
from streams.detection_agents import (
    IP_BLOCK,
    attach_detections,
    detection_thresholds,
    ip_block_policy,
)
from streams.enrich import open_enricher
from streams.ingest import attach_ingest
from streams.lockout_agent import KeyedFold, attach_fold_agent, lockout_fold
from streams.positions import JsonState

INGESTED_SUFFIX = "events-ingested"


@dataclass(frozen=True)
class Pipeline:
    """The app and what it declared, for the worker, the API and the wiring tests."""

    app: faust.App
    events: TopicT
    ingested: TopicT
    dlq: TopicT
    lockouts: TopicT
    anomalies: TopicT
    seen: WindowWrapper
    tables: Mapping[str, TableT[bytes, JsonState]]
    agents: Mapping[str, AgentT[bytes]]
    rekeyed: Mapping[str, TopicT] = field(default_factory=dict)
    """Internal topics re-keyed by IP and by tenant (``streams/rekey.py``), by kind of key."""


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


def create_app(settings: Settings, *, detections: Sequence[KeyedFold] = ()) -> faust.App:
    """The worker's Faust app (``factorstream worker`` runs it)."""
    return create_pipeline(settings, detections=detections).app


def create_pipeline(settings: Settings, *, detections: Sequence[KeyedFold] = ()) -> Pipeline:
    """Declare the app, its topics and tables, and wire ingest, the folds and the API.

    ``detections`` are the per-key risk detections (``streams/folds/``, pure), each wired
    exactly like the lockout fold, with its derived events going to the anomalies topic.
    The detections of ``streams/folds/`` and per-IP throttling are always wired, with
    thresholds from ``settings.detections`` and ``settings.ip_block``
    (``streams/detection_agents.py``).
    """
    stream, names = settings.stream, settings.topics
    partitions = names.events_partitions
    app_class = App if stream.in_order_delivery else faust.App  # App: delivers without holes
    app = app_class(
        stream.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        store=stream.store,
        datadir=str(settings.data_dir / "streams"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_disable_leader=True,
        processing_guarantee=stream.processing_guarantee,
        broker_commit_interval=stream.commit_interval_s,
        table_standby_replicas=stream.standby_replicas,
        web_bind=stream.web_bind,
        web_host=stream.web_host,
        web_port=stream.web_port,
        canonical_url=f"http://{stream.web_host}:{stream.web_port}",
        web_tables_enabled=False,  # Faust's /table/ would serve raw table values to anyone
        autodiscover=False,
    )

    def topic(name: str, *, count: int | None = None, internal: bool = False) -> TopicT:
        found: TopicT = app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=count,
            internal=internal,
        )
        return found

    derived = names.derived_partitions
    events = topic(names.events, count=partitions)
    ingested = topic(f"{stream.app_id}-{INGESTED_SUFFIX}", count=partitions, internal=True)
    dlq, lockouts = topic(names.dlq, count=derived), topic(names.lockouts, count=derived)
    anomalies = topic(names.anomalies, count=derived)
    window = timedelta(seconds=stream.dedupe_window_s)
    # (event id, window) keys as JSON: Faust picks a table's serializers from its key_type
    seen = cast(
        WindowWrapper,
        app.Table("ingest-seen", default=None, partitions=partitions).tumbling(
            window, expires=window
        ),
    )
    # -- enrichment (streams/enrich.py): geo/ASN from the client IP, after dedupe ---------
    enrich = stream.enrich
    enricher = (
        open_enricher(
            mmdb_path=enrich.mmdb_path,
            asn_mmdb_path=enrich.asn_mmdb_path,
            cache_size=enrich.cache_size,
        )
        if enrich.enabled
        else None
    )
    agents = {
        "ingest": attach_ingest(
            app,
            source=events,
            dead_letters=dlq,
            sink=ingested,
            seen=seen,
            enrich=enricher.enrich if enricher else None,
        )
    }
    # -- end of enrichment ------------------------------------------------------------------
    sinks = {"lockouts": lockouts, "anomalies": anomalies}
    tables: dict[str, TableT[bytes, JsonState]] = {}
    for fold in (lockout_fold(stream.default_tier), *detections):
        if fold.name in tables or fold.name == "ingest":
            raise ValueError(f"fold names must be unique and not 'ingest': {fold.name!r}")
        # bytes keys are serialized raw: the changelog key is the ingested record's key, so
        # the table router hashes exactly the bytes the producer partitioned by
        tables[fold.name] = app.Table(
            fold.name, default=None, key_type=bytes, partitions=partitions
        )
        agents[fold.name] = attach_fold_agent(
            app, fold, source=ingested, table=tables[fold.name], sink=sinks[fold.output]
        )
    # -- risk detections and per-IP throttling (streams/detection_agents.py) --------------
    wired = attach_detections(
        app,
        app_id=stream.app_id,
        partitions=partitions,
        ingested=ingested,
        sinks=sinks,
        thresholds=detection_thresholds(settings.detections),
        policy=ip_block_policy(settings.ip_block),
        taken=[*tables, *agents],
    )
    tables.update(wired.tables)
    agents.update(wired.agents)
    register_ip_block_api(app, wired.tables[IP_BLOCK])  # before the subject route: see api.py
    # -- end of risk detections and per-IP throttling --------------------------------------
    register_lockout_api(app, tables["lockout"])
    # -- sinks: every event, raw and derived, into the ledger and the lake -----------------
    everything = (ingested.get_topic_name(), names.lockouts, names.anomalies)
    agents["ledger"] = attach_ledger_sink(
        app,
        source=app.topic(*everything, key_type=bytes, value_type=bytes),
        ledger=open_ledger_of(settings),
        batch_size=settings.ledger.batch_size,
        batch_timeout_s=settings.ledger.batch_timeout_s,
        checkpoints=topic(names.checkpoints, count=1),
    )
    agents["lake"] = attach_lake_sink(
        app,
        source=app.topic(*everything, key_type=bytes, value_type=bytes),
        lake_path=settings.lake_path(),
        batch_rows=settings.lake.batch_rows,
        batch_timeout_s=settings.lake.batch_timeout_s,
    )
    attach_lake_compaction(
        app, lake_path=settings.lake_path(), min_files=settings.lake.compact_min_files
    )
    return Pipeline(
        app, events, ingested, dlq, lockouts, anomalies, seen, tables, agents, wired.rekeyed
    )

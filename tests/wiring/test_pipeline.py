"""What create_pipeline wires (streams/app.py): internal topics, the consumer, ingest's
enrichment from settings."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from factorstream.settings import EnrichSettings, Settings, StreamSettings
from factorstream.stream_config import pipeline_config
from schemas import Event, decode
from schemas.fields import Client, Geo
from streams.app import Pipeline, create_pipeline, internal_topics
from streams.consumer import InOrderConsumer
from tests.factories import sample_event
from tests.unit.streams.test_enrich import build_city_mmdb
from tests.unit.streams.test_stages import geo_of
from tests.wiring.fixtures import as_fetched, folds_pipeline, journal_of


def _pipeline(tmp_path: Path, **stream: Any) -> Pipeline:
    settings = StreamSettings(store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}", **stream)
    return create_pipeline(pipeline_config(Settings(data_dir=tmp_path, stream=settings)))


def test_internal_topics_are_listed_with_fausts_configs(tmp_path: Path) -> None:
    """The worker creates these before Faust starts (see ``internal_topics``)."""
    pipeline = _pipeline(tmp_path)
    app_id = pipeline.app.conf.id
    specs = internal_topics(pipeline)

    stages = ("subjects", "ips", "tenants")
    assert set(specs) == {
        f"{app_id}-events-ingested",
        f"{app_id}-events-by-subject",
        f"{app_id}-events-by-ip",
        f"{app_id}-events-by-tenant",
        *(f"{app_id}-{stage}-changelog" for stage in stages),
    }
    assert {spec.partitions for spec in specs.values()} == {6}
    for stage in stages:  # a stage table keeps each key's latest value: compacted
        assert specs[f"{app_id}-{stage}-changelog"].configs == {"cleanup.policy": "compact"}
    assert set(pipeline.tables) == set(stages)


def test_the_worker_reads_through_the_in_order_consumer_into_the_engine(tmp_path: Path) -> None:
    """Faust's own consumer can commit past records it never delivered
    (tests/integration/test_inorder_delivery.py): the worker's is always the in-order one."""
    pipeline = _pipeline(tmp_path)
    app = pipeline.app
    assert app.transport.Consumer is InOrderConsumer
    assert isinstance(app.consumer, InOrderConsumer)
    assert app.engine is pipeline.engine  # type: ignore[attr-defined]
    for topic in (pipeline.events, pipeline.ingested, *pipeline.rekeyed.values()):
        assert pipeline.engine.wants(topic.get_topic_name())


def test_only_the_sinks_read_the_ingested_topic(tmp_path: Path) -> None:
    """The subjects stage folds what ingest forwards in the same batch (no hop): a worker
    running the folds alone does not read the ingested topic back."""
    folds = folds_pipeline(tmp_path)
    assert not folds.engine.wants(folds.ingested.get_topic_name())
    assert folds.engine.wants(folds.events.get_topic_name())


def _from(ip: str) -> Event:
    event = sample_event("mfa.verification.succeeded")
    return replace(event, data=replace(event.data, client=Client(ip=ip, geo=None)))


async def _ingested(pipeline: Pipeline, event: Event) -> Event:
    """``event`` through the pipeline's ingest (in front of the subjects stage): what it
    forwarded to the ingested topic."""
    await pipeline.engine.keyed("subjects").handle(as_fetched(pipeline, [event]))
    (forwarded,) = journal_of(pipeline).of("produce", pipeline.ingested.get_topic_name())
    return decode(forwarded.value, forwarded.headers)


async def test_ingest_enriches_from_the_database_the_settings_name(tmp_path: Path) -> None:
    mmdb = build_city_mmdb(tmp_path / "city.mmdb")
    pipeline = folds_pipeline(tmp_path, enrich=EnrichSettings(mmdb_path=mmdb))

    forwarded = await _ingested(pipeline, _from("81.2.69.142"))

    geo = geo_of(forwarded)
    assert isinstance(geo, Geo)
    assert (geo.city, geo.source) == ("London", "mmdb")


async def test_enrichment_can_be_turned_off(tmp_path: Path) -> None:
    event = _from("8.8.8.8")
    enriched = await _ingested(folds_pipeline(tmp_path / "on"), event)
    assert geo_of(enriched) is not None
    pipeline = folds_pipeline(tmp_path / "off", enrich=EnrichSettings(enabled=False))
    assert await _ingested(pipeline, event) == event


def test_a_configured_database_that_is_missing_stops_the_worker_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _pipeline(tmp_path, enrich=EnrichSettings(mmdb_path=tmp_path / "missing.mmdb"))

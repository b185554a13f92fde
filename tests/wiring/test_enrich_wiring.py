"""The ingest agent forwards enriched events (Faust test_context, memory store)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from factorstream.settings import EnrichSettings, Settings, StreamSettings
from schemas import Event, decode, encode, kafka_key
from schemas.codec import structured_headers
from schemas.fields import Client, Geo
from streams.app import Pipeline, create_pipeline
from streams.enrich import load_centroids
from streams.ingest import IngestOutcome
from tests.factories import sample_event
from tests.unit.streams.test_enrich import build_city_mmdb


def _pipeline(tmp_path: Path, enrich: EnrichSettings) -> Pipeline:
    stream = StreamSettings(
        store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}", enrich=enrich
    )
    return create_pipeline(Settings(data_dir=tmp_path, stream=stream))


def _from(ip: str, subject: str, geo: Geo | None = None) -> Event:
    event = sample_event("mfa.verification.succeeded", subject=subject)
    return replace(event, data=replace(event.data, client=Client(ip=ip, geo=geo)))


async def _forwarded(
    pipeline: Pipeline, events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> list[Event]:
    """Put ``events`` through the ingest agent; what it sent to the ingested topic."""
    sent: list[Event] = []

    async def send(*, key: bytes, value: bytes, headers: Any = None, **_: Any) -> None:
        forwarded = decode(value, headers)
        assert key == kafka_key(forwarded)
        sent.append(forwarded)

    monkeypatch.setattr(pipeline.ingested, "send", send)
    async with pipeline.agents["ingest"].test_context() as agent:
        for event in events:
            await agent.put(encode(event), key=kafka_key(event), headers=structured_headers())
        assert [agent.results[i] for i in range(len(events))] == [IngestOutcome.FORWARDED] * len(
            events
        )
    return sent


async def test_ingest_forwards_events_enriched_from_the_operators_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mmdb = build_city_mmdb(tmp_path / "city.mmdb")
    pipeline = _pipeline(tmp_path, EnrichSettings(mmdb_path=mmdb))
    london, google, private = (
        _from("81.2.69.142", "u-1"),
        _from("8.8.8.8", "u-2"),
        _from("10.0.0.7", "u-3"),
    )
    supplied = _from("81.2.69.142", "u-4", Geo(country="DE", source="client"))

    forwarded = await _forwarded(pipeline, [london, google, private, supplied], monkeypatch)

    geos = [f.data.client.geo for f in forwarded]
    centroids = load_centroids()
    assert geos[0] == Geo(
        country="GB",
        region="England",
        city="London",
        latitude=51.5142,
        longitude=-0.0931,
        asn=20712,
        source="mmdb",
    )
    latitude, longitude = centroids["US"]
    assert geos[1] == Geo(
        country="US", latitude=latitude, longitude=longitude, asn=None, source="centroid"
    )
    assert forwarded[2] == private  # a private address: forwarded as it came
    latitude, longitude = centroids["DE"]  # the service said DE: its country wins
    assert geos[3] == Geo(
        country="DE", latitude=latitude, longitude=longitude, asn=20712, source="centroid"
    )
    assert [f.id for f in forwarded] == [e.id for e in (london, google, private, supplied)]


async def test_enrichment_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _pipeline(tmp_path, EnrichSettings(enabled=False))
    event = _from("8.8.8.8", "u-1")
    assert await _forwarded(pipeline, [event], monkeypatch) == [event]


def test_a_configured_database_that_is_missing_stops_the_worker_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _pipeline(tmp_path, EnrichSettings(mmdb_path=tmp_path / "missing.mmdb"))

"""``bench ingest``: CloudEvents over HTTP, acknowledged, against a bare producer; and the
identity providers' mapping rates.

* **HTTP batch ingest** (the candidate): the ingest in a process of its own (uvicorn, as
  ``factorstream ingest serve`` runs it: credential check, decode and validation of every
  event by the contract's codec, tenant and producer checks, then the idempotent
  ``acks=all`` producer), :data:`CLIENTS` clients on keep-alive connections each posting
  ``application/cloudevents-batch+json`` batches one after the other; a batch counts when
  its 202 arrived, i.e. the broker acknowledged every event of it.
* **Bare aiokafka producer** (the baseline), in this process: the same bytes (structured
  values, keys, headers) with the same producer settings (idempotent, ``acks=all``, same
  linger) to a topic of the same partitions on the same broker, every acknowledgement
  awaited. Rounds alternate, the best of each is kept. Goal: HTTP ≥ 0.5× bare.
* **Mapping rates** (one per adapter of :data:`MAPPERS`: Auth0, Okta, Keycloak, Entra ID):
  records/s of each provider's pure ``map_records`` over synthetic records of its log format
  in an MFA-heavy mix (:mod:`factorstream.bench.idp_records`), and the events they became
  per record (an Entra ID sign-in is several), beside ``json.loads`` of the same records.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factorstream.bench import BenchResult, Measurement, percentile
from factorstream.bench.broker import broker_for
from factorstream.bench.events import synthetic_events
from factorstream.bench.http_load import HOST, cpu_seconds, post_all, wait_for_port
from factorstream.bench.idp_records import (
    auth0_records,
    entra_records,
    keycloak_records,
    okta_records,
)
from factorstream.localkafka import ensure_topics, free_port
from factorstream.settings import Settings
from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers
from sources.cloudevents_http import BATCH_CONTENT_TYPE
from sources.unmapped import Unmapped
from verifiers.kafka_connection import aiokafka_config

CLIENTS = 4
LINGER_MS = 5
PARTITIONS = 6


def run(*, settings: Settings, quick: bool, bootstrap: str | None) -> list[BenchResult]:
    count, batch, rounds = (2_000, 200, 1) if quick else (40_000, 500, 3)
    mapping_records = 2_000 if quick else 50_000
    with broker_for(settings, bootstrap) as on_broker, tempfile.TemporaryDirectory() as tmp:
        kafka = aiokafka_config(on_broker.kafka())
        http_result = _http_against_bare(
            kafka, on_broker.kafka_bootstrap, Path(tmp), count, batch, rounds
        )
    return [http_result, mapping_rates(mapping_records)]


# -- HTTP batch ingest against a bare producer ---------------------------------------------


def _http_against_bare(
    kafka: Mapping[str, Any], bootstrap: str, tmp: Path, count: int, batch: int, rounds: int
) -> BenchResult:
    from sources.credentials import ingest_credentials
    from sources.http_ingest import IngestConfig
    from sources.ingest_server import IngestServerConfig

    prefix = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {f"{prefix}.bare": PARTITIONS, f"{prefix}.http": PARTITIONS})
    database = f"sqlite:///{tmp / 'ingest.db'}"
    store = ingest_credentials(database)
    token = store.add(tenant="acme", audience=None, label="bench", now=datetime.now(UTC)).credential
    store.engine.dispose()
    config = IngestServerConfig(
        app=IngestConfig(max_batch_events=batch, max_ahead=None),
        database_url=database,
        kafka=kafka,
        topic=f"{prefix}.http",
        delivery_timeout_s=60,
        linger_ms=LINGER_MS,
    )
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(config, port), name="bench-ingest"
    )
    server.start()
    bare_best = http_best = 0.0
    latencies: list[float] = []
    cpu_per_event = 0.0
    try:
        wait_for_port(port, server, "ingest")
        bodies = [
            b"[" + b",".join(encode(event) for event in chunk) + b"]"
            for chunk in _chunks(synthetic_events(count), batch)
        ]
        asyncio.run(_post_batches(port, token, bodies[:1], clients=1))  # connect and warm up
        for _ in range(rounds):
            events = _fresh_ids(synthetic_events(count))
            bare_best = max(bare_best, asyncio.run(_bare_round(kafka, f"{prefix}.bare", events)))
            bodies = [
                b"[" + b",".join(encode(event) for event in chunk) + b"]"
                for chunk in _chunks(events, batch)
            ]
            cpu = cpu_seconds(server.pid)
            seconds, took = asyncio.run(_post_batches(port, token, bodies, clients=CLIENTS))
            if count / seconds > http_best:
                http_best, latencies = count / seconds, took
                cpu_per_event = (cpu_seconds(server.pid) - cpu) / count
    finally:
        server.terminate()
        server.join(timeout=30)
    p50, p99 = percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3
    return BenchResult(
        bench="ingest-http-batch",
        baseline=Measurement(
            "bare aiokafka producer, same bytes, acks=all", bare_best, rounds, count
        ),
        contenders=[
            Measurement(
                f"HTTP batch ingest, {CLIENTS} clients × {batch} events, 202 on ack",
                http_best,
                rounds,
                count,
            )
        ],
        goal_ratio=0.5,
        goal_text="HTTP batch ingest ≥ 0.5× the bare producer",
        notes={
            "events": f"{count:,} a round, idempotent producers, acks=all, linger {LINGER_MS} ms, "
            f"{PARTITIONS} partitions",
            "batch latency": f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({batch} events)",
            "ingest CPU per event": f"{cpu_per_event * 1e6:.0f} µs",
        },
    )


def _chunks(events: Sequence[Event], size: int) -> Iterator[Sequence[Event]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _fresh_ids(events: list[Event]) -> list[Event]:
    """The same events under new ids, so no round repeats another's (a consumer would drop
    a repeat as a duplicate; the broker takes it either way)."""
    import msgspec

    from schemas.envelope import uuid7

    return [msgspec.structs.replace(e, id=uuid7(e.time)) for e in events]


async def _bare_round(kafka: Mapping[str, Any], topic: str, events: Sequence[Event]) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, linger_ms=LINGER_MS)
    await producer.start()
    try:
        await (await producer.send(topic, value=b"{}", key=b"warm-up"))
        records = [(kafka_key(event), encode(event)) for event in events]
        headers = structured_headers()
        started = time.perf_counter()
        pending = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value in records
        ]
        await asyncio.gather(*pending)
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _serve(config: Any, port: int) -> None:
    """The ingest in its own process, as ``factorstream ingest serve`` runs it."""
    from sources.ingest_server import serve

    serve(config, host=HOST, port=port, clock=lambda: datetime.now(UTC), log_level="warning")


# -- mapping rates -------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingBench:
    """An adapter's place in the mapping rates: the ``source`` its events get and a maker
    of ``n`` synthetic records of its log format. The function measured and its config
    class are the adapter's own, from the registry ``idp poll`` and ``idp ingest`` map
    through (:data:`factorstream.idp_config.MAPPINGS`)."""

    source: str
    records: Callable[[int], list[dict[str, Any]]]


MAPPERS: dict[str, MappingBench] = {
    "auth0": MappingBench("https://acme.eu.auth0.com/", auth0_records),
    "okta": MappingBench("https://acme.okta.com/", okta_records),
    "keycloak": MappingBench("https://sso.acme.example/realms/acme", keycloak_records),
    "entra": MappingBench(
        "https://login.microsoftonline.com/99081087-73c4-48d1-a112-f60ff75114f7", entra_records
    ),
}
"""Each adapter measured, by provider name (every provider of ``MAPPINGS``)."""

MappingFunction = Callable[[Any, Any], Sequence[Event | Unmapped]]

EVENTS_COUNTED = (
    "events produced, counted (an Entra ID sign-in becomes several: the sign-in, each MFA "
    "step, a risk verdict), not records that mapped"
)


def mapping_of(provider: str, source: str) -> tuple[MappingFunction, Any]:
    """The adapter's mapping function (``map_records``) and its config for ``source``."""
    from factorstream.idp_config import MAPPINGS

    entry = MAPPINGS[provider]
    module = importlib.import_module(entry.module)
    function: MappingFunction = getattr(module, entry.function)
    return function, getattr(module, entry.config)(tenant="acme", source=source)


def mapping_rates(count: int, adapters: Mapping[str, MappingBench] = MAPPERS) -> BenchResult:
    """Records/s of each adapter's mapping function (``map_records``, what polling,
    webhooks and backfills run) over ``count`` records of its format, and the events
    they became per record; the baseline is ``json.loads`` of the same records (what
    reading them costs at least), every adapter's together, each one's in the notes."""
    import json

    measured: list[Measurement] = []
    loads_seconds = 0.0
    notes = {"events per record": EVENTS_COUNTED}
    for name, adapter in adapters.items():
        function, config = mapping_of(name, adapter.source)
        records = adapter.records(count)
        lines = [json.dumps(record) for record in records]
        started = time.perf_counter()
        for line in lines:
            json.loads(line)
        loads = time.perf_counter() - started
        loads_seconds += loads
        started = time.perf_counter()
        results = [function(record, config) for record in records]
        seconds = time.perf_counter() - started
        mapped = [result for each in results for result in each]
        unmapped = sum(1 for result in mapped if isinstance(result, Unmapped))
        events = len(mapped) - unmapped
        label = f"{name} mapping ({function.__module__}.{function.__qualname__})"
        measured.append(Measurement(label, count / seconds, 1, count))
        notes[name] = (
            f"{events / count:.2f} events per record ({events:,} from {count:,} records, "
            f"{unmapped:,} unmapped); json.loads {count / loads:,.0f} records/s"
        )
    total = count * len(adapters)
    return BenchResult(
        bench="ingest-mapping",
        baseline=Measurement(
            "json.loads of the same records (every adapter's)", total / loads_seconds, 1, total
        ),
        contenders=measured,
        unit="records/s",
        goal_ratio=0.0,
        goal_text="a figure per adapter (no goal)",
        notes=notes,
    )


async def _post_batches(
    port: int, token: str, bodies: Sequence[bytes], *, clients: int
) -> tuple[float, list[float]]:
    """Each body as a batch to ``/v1/events``; anything but 202 fails the benchmark."""
    requests = [("/v1/events", body) for body in bodies]
    return await post_all(
        port, token, requests, clients=clients, content_type=BATCH_CONTENT_TYPE, expect=202
    )

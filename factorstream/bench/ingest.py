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
* **Mapping rates** (a slot per adapter): records/s of each provider's pure mapping
  function over synthetic records of its log format (Auth0 today: ``sources.auth0.map_log``);
  the other adapters add theirs to :data:`MAPPERS`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from factorstream.bench import BenchResult, Measurement, percentile
from factorstream.bench.broker import broker_for
from factorstream.bench.events import synthetic_events
from factorstream.localkafka import ensure_topics, free_port
from factorstream.settings import Settings
from schemas import Event, encode, kafka_key
from schemas.codec import structured_headers
from schemas.envelope import CloudEvent
from verifiers.kafka_connection import aiokafka_config

CLIENTS = 4
HOST = "127.0.0.1"
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
        _wait_for(port, server)
        bodies = [
            b"[" + b",".join(encode(event) for event in chunk) + b"]"
            for chunk in _chunks(synthetic_events(count), batch)
        ]
        asyncio.run(_post_all(port, token, bodies[:1], clients=1))  # connect and warm up
        for _ in range(rounds):
            events = _fresh_ids(synthetic_events(count))
            bare_best = max(bare_best, asyncio.run(_bare_round(kafka, f"{prefix}.bare", events)))
            bodies = [
                b"[" + b",".join(encode(event) for event in chunk) + b"]"
                for chunk in _chunks(events, batch)
            ]
            cpu = _cpu_seconds(server.pid)
            seconds, took = asyncio.run(_post_all(port, token, bodies, clients=CLIENTS))
            if count / seconds > http_best:
                http_best, latencies = count / seconds, took
                cpu_per_event = (_cpu_seconds(server.pid) - cpu) / count
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


def _wait_for(port: int, server: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise RuntimeError("the benchmark's ingest process exited")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the benchmark's ingest did not start")


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _post_all(
    port: int, token: str, bodies: Sequence[bytes], *, clients: int
) -> tuple[float, list[float]]:
    """POST every body as a batch from ``clients`` keep-alive connections; the seconds it
    took and each request's latency (s). Anything but 202 fails the benchmark."""
    pending = iter(bodies)
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for body in pending:
                head = (
                    f"POST /v1/events HTTP/1.1\r\nHost: {HOST}\r\n"
                    f"Authorization: Bearer {token}\r\n"
                    "Content-Type: application/cloudevents-batch+json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                await writer.drain()
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 202 " not in status:
                    raise AssertionError(f"ingest answered {status!r} {answer[:300]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


# -- mapping rates -------------------------------------------------------------------------

Mapper = Callable[[Any], object]


def _auth0() -> tuple[Mapper, Callable[[int], list[dict[str, Any]]]]:
    from sources.auth0 import Auth0Source, map_log

    source = Auth0Source(tenant="acme", source="https://acme.eu.auth0.com/")
    return (lambda record: map_log(record, source)), auth0_records


MAPPERS: dict[str, Callable[[], tuple[Mapper, Callable[[int], list[dict[str, Any]]]]]] = {
    "auth0": _auth0,
}
"""Each adapter: its mapping function and a maker of ``n`` synthetic records of its format.
The Okta, Keycloak and Entra ID adapters register here."""

_AUTH0_TYPES = (
    ("gd_auth_succeed", 30),
    ("gd_auth_failed", 10),
    ("gd_start_auth", 20),
    ("gd_send_sms", 8),
    ("gd_send_email", 4),
    ("s", 40),
    ("f", 6),
    ("fp", 4),
    ("mfar", 10),
    ("gd_enrollment_complete", 2),
    ("limit_wc", 1),
    ("sapi", 3),  # not MFA: unmapped, counted
)


def auth0_records(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` Auth0 log records (Management API / Log Streams shape) of an MFA mix."""
    rng = random.Random(seed)
    kinds = [kind for kind, _ in _AUTH0_TYPES]
    weights = [weight for _, weight in _AUTH0_TYPES]
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    records = []
    for index in range(count):
        moment += timedelta(milliseconds=rng.randint(1, 900))
        kind = rng.choices(kinds, weights)[0]
        details: dict[str, Any] = {}
        if kind.startswith("gd_"):
            details = {
                "authenticator": {"id": f"sms|dev_{index % 97}", "type": "sms"},
                "enrollment": {"_id": f"dev_{index % 97}", "user_id": f"auth0|{index % 500}"},
            }
        records.append(
            {
                "log_id": f"9002023013120150972346{index:016d}",
                "date": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "type": kind,
                "user_id": f"auth0|{index % 500}",
                "user_name": f"user{index % 500}@example.com",
                "client_id": "AbC12345dEf67890gHi12345",
                "client_name": "My Application",
                "ip": f"192.0.2.{index % 250 + 1}",
                "user_agent": "Chrome 120.0.0 / Mac OS X 10.15.7",
                "connection": "Username-Password-Authentication",
                "details": details,
            }
        )
    return records


def mapping_rates(count: int) -> BenchResult:
    """Records/s of each adapter's mapping function; the baseline is ``json.loads`` of the
    same records (what reading them costs at least)."""
    import json

    measured: list[Measurement] = []
    loads_rate = 0.0
    notes: dict[str, str] = {}
    for name, make in MAPPERS.items():
        mapper, records_of = make()
        records = records_of(count)
        lines = [json.dumps(record) for record in records]
        started = time.perf_counter()
        for line in lines:
            json.loads(line)
        loads_rate = max(loads_rate, count / (time.perf_counter() - started))
        started = time.perf_counter()
        results = [mapper(record) for record in records]
        rate = count / (time.perf_counter() - started)
        events = sum(1 for result in results if isinstance(result, CloudEvent))
        measured.append(Measurement(f"{name} mapping (map_log)", rate, 1, count))
        notes[name] = f"{events:,} of {count:,} records became events, the rest unmapped"
    return BenchResult(
        bench="ingest-mapping",
        baseline=Measurement("json.loads of the same records", loads_rate, 1, count),
        contenders=measured,
        unit="records/s",
        goal_ratio=0.0,
        goal_text="a figure per adapter (no goal)",
        notes=notes,
    )

"""``bench service``: the MFA service over HTTP, on PostgreSQL, with 32 concurrent clients.

* TOTP verifications/s through HTTP (``POST /v1/subjects/{s}/totp/verify``: credential
  check, lockout gate, replay guard, outbox event, signed assertion), each of 32 clients on
  its own keep-alive connection sending one request after the other; p50 and p99 latency.
* The library path: ``totp.verify`` called in-process, one after another, same database.
* The durable floor, the baseline: one one-row commit per transaction, same database, same
  run (what no durable verifier can beat; see ``bench verifiers``), timed in chunks taken
  in turn with the library path's, so a drift in the machine's pace hits both alike.
* ``POST /v1/assess`` (score, decision, two events recorded in one transaction; no stream
  view) with 32 clients: requests/s, p50, p99.
* Both again as an open loop, at a quarter and at half of the rate the 32 clients reached:
  each request is due at its own moment whether or not the others were answered, and its
  latency counts from then. 32 clients sending back to back keep the service saturated,
  so their p99 is mostly queueing (Little's law: 32 clients / requests per second); an
  open loop below capacity shows what one request costs at a load.

The service runs in a process of its own (uvicorn, as ``factorstream serve`` runs it, rate
limits off) whose clock is fixed, so every subject's code is fresh once; the clients run
on one asyncio loop in this process. Goals (issue 18): library ≥ 0.5× the floor; HTTP
TOTP p99 ≤ 25 ms; assess p99 ≤ 10 ms.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp

from factorstream.bench import BenchResult, Measurement, percentile
from factorstream.bench.http_load import (
    HOST,
    cpu_seconds,
    post_all,
    post_at_rate,
    wait_for_port,
)
from factorstream.bench.verifiers import DurableFloor, _postgres, floor_name
from factorstream.localkafka import free_port
from schemas.fields import PolicyTier
from verifiers import totp
from verifiers.publish import metadata
from verifiers.service.config import RateLimits, ServiceConfig
from verifiers.store import Request, VerifierStore

CLIENTS = 32
LOADS = (0.25, 0.5)
"""The open loop's rates, as fractions of the rate the 32 clients reached."""
CHUNKS = 4
"""The library path and the durable floor are timed in this many chunks, taken in turn."""
OPEN_LOOP_S = 12
"""How long each open-loop run lasts at most (fewer requests in the quick run)."""


def run(*, quick: bool, postgres_url: str | None = None) -> list[BenchResult]:
    count = 64 if quick else 2_000
    with (
        tempfile.TemporaryDirectory(prefix="factorstream-bench-") as tmp,
        _postgres(postgres_url) as url,
    ):
        return _run(Path(tmp), url, count)


def _config(tmp: Path, url: str) -> ServiceConfig:
    return ServiceConfig(
        database_url=url,
        secrets_key_file=tmp / "secrets.key",
        signing_key_file=tmp / "signing.pem",
        issuer="https://bench.invalid",
        rate_limits=RateLimits(per_ip_per_s=0, per_client_per_s=0),
    )


def _fresh_store(config: ServiceConfig) -> VerifierStore:
    from verifiers.service.server import open_store

    store = open_store(config)
    with store.engine.begin() as connection:
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.migrate()
    return store


def _run(tmp: Path, url: str, count: int) -> list[BenchResult]:
    config = _config(tmp, url)
    store = _fresh_store(config)
    moment = datetime.now(UTC).replace(microsecond=0)
    enrolled = moment - timedelta(minutes=5)
    generators = {}
    for index in range(count * (1 + len(LOADS))):  # a fresh code each: one set a run
        subject = f"u-{index:05d}"
        request = _request(subject, enrolled)
        enrollment = totp.begin_enrollment(store, request, account_name=subject, issuer="Bench")
        generator = pyotp.TOTP(pyotp.parse_uri(enrollment.provisioning_uri).secret)
        verdict = totp.confirm_enrollment(
            store, request, enrollment_id=enrollment.enrollment_id, code=generator.at(enrolled)
        )
        if not verdict.accepted:
            raise AssertionError(f"enrollment refused: {verdict.reason}")
        generators[subject] = generator
    from verifiers.service.clients import ServiceClients

    token = (
        ServiceClients(store.engine)
        .add(tenant="acme", audience=None, label="bench", now=enrolled)
        .credential
    )

    # the library path, in-process, a step before the HTTP run's moment, in chunks taken
    # in turn with the durable floor's (the machine's pace drifts within a run)
    library_at = moment - timedelta(seconds=60)
    subjects = list(itertools.islice(generators.items(), count))
    library_s = floor_s = 0.0
    size = -(-count // CHUNKS)  # (rounded up)
    floor_writer = DurableFloor(store.engine)
    try:
        for start in range(0, count, size):
            chunk = subjects[start : start + size]
            started = time.perf_counter()
            for subject, generator in chunk:
                verdict = totp.verify(
                    store, _request(subject, library_at), code=generator.at(library_at)
                )
                if not verdict.accepted:
                    raise AssertionError(f"the library refused a valid code: {verdict.reason}")
            library_s += time.perf_counter() - started
            floor_s += floor_writer.commit(len(chunk))
    finally:
        floor_writer.close()
    floor = Measurement(floor_name(commits=1, backend="PostgreSQL"), count / floor_s, 1, count)
    store.engine.dispose()

    port = free_port()
    context = multiprocessing.get_context("spawn")
    server = context.Process(
        target=_serve, args=(config, port, moment.isoformat()), name="bench-service"
    )
    server.start()
    try:
        wait_for_port(port, server, "service")
        verify = [
            (
                f"/v1/subjects/{subject}/totp/verify",
                json.dumps({"code": generator.at(moment)}).encode(),
            )
            for subject, generator in generators.items()
        ]
        cpu = cpu_seconds(server.pid)
        http_s, http_latencies = asyncio.run(_load(port, token, verify[:count]))
        http_cpu, cpu = cpu_seconds(server.pid) - cpu, cpu_seconds(server.pid)
        http_open = [
            _open_loop(
                port, token, verify[count * (n + 1) : count * (n + 2)], load * count / http_s
            )
            for n, load in enumerate(LOADS)
        ]
        cpu = cpu_seconds(server.pid)
        assess = [
            (
                "/v1/assess",
                json.dumps(
                    {
                        "subject": subject,
                        "ip": f"203.0.113.{index % 250}",
                        "device_id": f"device-{index % 7}",
                        "geo": {"country": "DE", "latitude": 52.5, "longitude": 13.4},
                    }
                ).encode(),
            )
            for index, subject in enumerate(itertools.islice(generators, count))
        ]
        assess_s, assess_latencies = asyncio.run(_load(port, token, assess))
        assess_cpu = cpu_seconds(server.pid) - cpu
        assess_open = [_open_loop(port, token, assess, load * count / assess_s) for load in LOADS]
    finally:
        server.terminate()
        server.join(timeout=30)
    http = Measurement(
        f"HTTP totp/verify, {CLIENTS} clients (PostgreSQL)", count / http_s, 1, count
    )
    library = Measurement(
        "library totp.verify, sequential (PostgreSQL)", count / library_s, 1, count
    )
    http_p50, http_p99 = _percentiles(http_latencies)
    assess_p50, assess_p99 = _percentiles(assess_latencies)
    totp_result = BenchResult(
        bench="service-totp-postgresql",
        baseline=floor,
        contenders=[library, http],
        unit="verifications/s",
        goal_ratio=0.5,
        goal_text="library ≥ 0.5× the durable floor; HTTP p99 ≤ 25 ms",
        goal_met=library.events_per_s >= 0.5 * floor.events_per_s and http_p99 <= 25.0,
        notes={
            "HTTP latency": f"p50 {http_p50:.1f} ms, p99 {http_p99:.1f} ms ({CLIENTS} clients)",
            "HTTP vs floor": f"{http.events_per_s / floor.events_per_s:.2f}×",
            "library per verification": f"{library_s / count * 1e3:.2f} ms",
            "service CPU per HTTP verification": f"{http_cpu / count * 1e3:.2f} ms",
            **_open_notes(http_open),
        },
    )
    assess_result = BenchResult(
        bench="service-assess-postgresql",
        baseline=floor,
        contenders=[
            Measurement(f"HTTP assess, {CLIENTS} clients (PostgreSQL)", count / assess_s, 1, count)
        ],
        unit="requests/s",
        goal_ratio=0.0,
        goal_text="p99 ≤ 10 ms",
        goal_met=assess_p99 <= 10.0,
        notes={
            "latency": f"p50 {assess_p50:.1f} ms, p99 {assess_p99:.1f} ms ({CLIENTS} clients)",
            "service CPU per assessment": f"{assess_cpu / count * 1e3:.2f} ms",
            **_open_notes(assess_open),
        },
    )
    return [totp_result, assess_result]


def _open_loop(
    port: int, token: str, requests: Sequence[tuple[str, bytes]], per_s: float
) -> tuple[float, float, list[float]]:
    """The first :data:`OPEN_LOOP_S` seconds' worth of ``requests`` as an open loop at
    ``per_s``: the rate asked, the rate achieved and each request's latency (s)."""
    achieved, latencies = asyncio.run(
        post_at_rate(
            port,
            token,
            requests[: max(1, int(per_s * OPEN_LOOP_S))],
            per_s=per_s,
            connections=CLIENTS,
            content_type="application/json",
            expect=200,
        )
    )
    return per_s, achieved, latencies


def _open_notes(runs: Sequence[tuple[float, float, list[float]]]) -> dict[str, str]:
    notes = {}
    for load, (asked, achieved, latencies) in zip(LOADS, runs, strict=True):
        p50, p99 = _percentiles(latencies)
        notes[f"open loop at {load:.0%} of that rate"] = (
            f"{asked:,.0f}/s asked, {achieved:,.0f}/s achieved: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
    return notes


def _request(subject: str, moment: datetime) -> Request:
    return Request(
        tenant="acme",
        subject=subject,
        correlationid=f"bench-{subject}",
        now=moment,
        tier=PolicyTier.CUSTOMER,
        application="bench",
    )


def _percentiles(latencies: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of latencies in seconds."""
    return percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3


def _serve(config: ServiceConfig, port: int, moment: str) -> None:
    """The service in its own process, its clock fixed at ``moment``."""
    from verifiers.service.server import serve

    fixed = datetime.fromisoformat(moment)
    serve(config, host=HOST, port=port, clock=lambda: fixed, log_level="warning")


async def _load(
    port: int, token: str, requests: Sequence[tuple[str, bytes]]
) -> tuple[float, list[float]]:
    """Send ``requests`` from :data:`CLIENTS` keep-alive connections (anything but 200
    fails the benchmark)."""
    return await post_all(
        port, token, requests, clients=CLIENTS, content_type="application/json", expect=200
    )

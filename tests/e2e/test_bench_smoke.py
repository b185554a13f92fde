"""CI smoke-runs ``factorstream bench all --quick``: every benchmark at tiny sizes, on the
test session's broker and PostgreSQL (figures come from full runs, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analytics.queries import QUERIES
from factorstream import docs
from factorstream.settings import Settings
from factorstream.stream_config import settings_topology
from tests.kafka_broker import KafkaBroker

Document = dict[str, object]


def _check(document: Document, goal: float, events: int | None = None) -> None:
    """A result that compares a measured contender with a measured baseline."""
    assert document["goal_ratio"] == goal
    baseline, contenders = document["baseline"], document["contenders"]
    assert isinstance(baseline, dict) and baseline["events_per_s"] > 0
    assert isinstance(contenders, list) and contenders[0]["events_per_s"] > 0
    assert isinstance(document["ratio"], float) and document["ratio"] > 0
    if events is not None:
        assert contenders[0]["events"] == events


def _names(document: Document) -> list[str]:
    contenders = document["contenders"]
    assert isinstance(contenders, list)
    return [str(m["name"]) for m in contenders]


def test_bench_all_quick_writes_every_figure(
    kafka_broker: KafkaBroker, postgres_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "bench-results.json"
    result = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "bench", "all", "--quick", "--json"]
        + ["--output", str(output), "--bootstrap", kafka_broker.bootstrap]
        + ["--postgres-url", postgres_url],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    documents: list[Document] = json.loads(result.stdout)
    assert json.loads(output.read_text()) == documents  # docs/benchmarks.md's source
    by_name = {str(d["bench"]): d for d in documents}
    assert list(by_name) == [
        "codec",
        "folds",
        "publish",
        "ingest-http-batch",
        "ingest-mapping",
        "verifiers-totp-sqlite",
        "verifiers-totp-postgresql",
        "verifiers-webauthn-sqlite",
        "service-totp-postgresql",
        "service-assess-postgresql",
        "ledger-append-sqlite",
        "ledger-append-postgresql",
        "ledger-verify-sqlite",
        "analytics ingest",
        "analytics queries over 20,000 events",
        "pipeline",
        "pipeline-two-workers",
        "pipeline-sink-ledger",
        "pipeline-sink-lake",
        "pipeline-latency",
        "replay",
    ]
    _check(by_name["codec"], 3.0, events=2_000)
    _check(by_name["folds"], 1.0, events=4_000)  # CPU µs/event as a rate, beside the goal's
    folds = settings_topology(Settings()).fold_names  # every fold the worker runs
    assert _names(by_name["folds"])[1:] == [f"fold {name}" for name in folds]
    _check(by_name["publish"], 0.8)
    for name in ("verifiers-totp-sqlite", "verifiers-totp-postgresql"):
        _check(by_name[name], 0.5, events=100)
    _check(by_name["verifiers-webauthn-sqlite"], 0.7, events=100)
    _check(by_name["ledger-append-sqlite"], 0.5)
    _check(by_name["ledger-append-postgresql"], 0.5)
    assert _names(by_name["ledger-append-postgresql"])[1].startswith("plain binary COPY")
    for name in ("verifiers-totp-sqlite", "verifiers-totp-postgresql", "verifiers-webauthn-sqlite"):
        assert _names(by_name[name])[1].startswith("durable floor:")
    service = by_name["service-totp-postgresql"]
    _check(service, 0.5, events=64)
    assert _names(service) == [
        "library totp.verify, sequential (PostgreSQL)",
        "HTTP totp/verify, 32 clients (PostgreSQL)",
    ]
    assert service["baseline"]["name"].startswith("durable floor:")  # type: ignore[index]
    assert "p99" in service["notes"]["HTTP latency"]  # type: ignore[index]
    assess = by_name["service-assess-postgresql"]
    assert assess["contenders"][0]["events"] == 64  # type: ignore[index]
    assert "p99" in assess["notes"]["latency"]  # type: ignore[index]
    _check(by_name["analytics ingest"], 0.7)
    queries = by_name["analytics queries over 20,000 events"]["contenders"]
    assert isinstance(queries, list) and len(queries) == len(QUERIES)  # every named query
    _check(by_name["pipeline"], 0.5, events=2_000)
    # the worker beside the fold floor (baseline) and a bare consumer, and where time goes
    pipeline = by_name["pipeline"]
    assert _names(pipeline) == [
        "factorstream worker (folds, RocksDB)",
        "bare aiokafka consume + decode",
    ]
    assert pipeline["baseline"]["name"].startswith("fold floor")  # type: ignore[index]
    assert all(m["events_per_s"] > 0 for m in pipeline["contenders"])  # type: ignore[index]
    notes = pipeline["notes"]
    assert isinstance(notes, dict) and notes["worker CPU"].endswith(")")
    written = notes["records the worker wrote per event"]
    assert float(written.split()[0]) > 1  # at least the forward to the ingested topic
    _check(by_name["pipeline-two-workers"], 1.4, events=2_000)
    for sink in ("ledger", "lake"):
        _check(by_name[f"pipeline-sink-{sink}"], 0.5)
        assert _names(by_name[f"pipeline-sink-{sink}"]) == [
            f"factorstream sink {sink} (own process)"
        ]
    latency = by_name["pipeline-latency"]
    _check(latency, 1.0)
    notes = latency["notes"]
    assert isinstance(notes, dict) and notes["probes"] == "5 (timed out after 30 s: 0)"
    replay = by_name["replay"]  # factorstream replay read every event back
    _check(replay, 1.0, events=2_000)
    assert "0 dead-lettered, 0 duplicates" in replay["notes"]["replay"]  # type: ignore[index]

    table = docs.bench_section(documents)  # what `factorstream docs` puts in docs/benchmarks.md
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(by_name)

"""CI smoke-runs the benchmarks at tiny sizes (figures come from full runs, not tests)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.kafka_broker import KafkaBroker


def _bench(*args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "bench", *args, "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def _check(document: dict[str, object], bench: str, goal: float) -> None:
    assert document["bench"] == bench
    assert document["goal_ratio"] == goal
    baseline = document["baseline"]
    assert isinstance(baseline, dict) and baseline["events_per_s"] > 0
    assert isinstance(document["ratio"], float) and document["ratio"] > 0


def test_bench_codec_quick() -> None:
    document = _bench("codec")
    _check(document, "codec", 3.0)
    assert document["contenders"][0]["events"] == 2_000  # type: ignore[index]


def test_bench_publish_quick(kafka_broker: KafkaBroker) -> None:
    document = _bench("publish", "--bootstrap", kafka_broker.bootstrap)
    _check(document, "publish", 0.8)


def test_bench_verifiers_quick(postgres_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "factorstream.cli",
            "bench",
            "verifiers",
            "--quick",
            "--json",
            "--postgres-url",
            postgres_url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    assert [d["bench"] for d in documents] == [
        "verifiers-totp-sqlite",
        "verifiers-totp-postgresql",
        "verifiers-webauthn-sqlite",
    ]
    for document in documents:
        assert document["contenders"][0]["events"] == 100
        assert document["ratio"] > 0


def _bench_list(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "bench", *args, "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    documents: list[dict[str, object]] = json.loads(result.stdout)
    return documents


def test_bench_ledger_quick(postgres_url: str) -> None:
    documents = _bench_list("ledger", "--postgres-url", postgres_url)
    assert [d["bench"] for d in documents] == [
        "ledger-append-sqlite",
        "ledger-append-postgresql",
        "ledger-verify-sqlite",
    ]
    _check(documents[0], "ledger-append-sqlite", 0.5)
    _check(documents[1], "ledger-append-postgresql", 0.5)


def test_bench_analytics_quick() -> None:
    ingest, queries = _bench_list("analytics")
    assert ingest["goal_ratio"] == 0.7
    assert isinstance(ingest["ratio"], float) and ingest["ratio"] > 0
    contenders = queries["contenders"]
    assert isinstance(contenders, list) and len(contenders) == 14

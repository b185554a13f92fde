"""GDPR erasure end to end, as a DPO and a SOC analyst would see it: a real worker has put a
subject's sign-ins into the ledger and the lake; ``factorstream audit erase`` crypto-shreds
the ledger and publishes the erasure; the worker's lake sink redacts the lake; afterwards
``factorstream sql`` finds none of the subject's addresses, places or devices, another
subject keeps theirs, and ``factorstream audit verify`` still passes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics.views import connect, fetch
from factorstream.control_keys import control_signing_key
from factorstream.localkafka import free_port
from factorstream.settings import Settings, TopicSettings
from schemas import Event
from schemas.signing import sign_event
from tests.factories import CLIENT, T0, sample_event
from tests.integration.records import Record, consume
from tests.integration.test_worker import ROOT, _produce, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.support import wait_for

__all__ = ["topics"]  # the fixture, re-used from test_worker

CLUES = ("ip", "city", "latitude", "longitude", "device_id")
"""Columns of the events table that locate or identify a person."""


def _factorstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factorstream.cli", *args],
        cwd=ROOT,
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sql(env: dict[str, str], query: str) -> list[dict[str, object]]:
    result = _factorstream(env, "sql", "--format", "json", query)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def _clues_of(lake: Path, subject: str) -> int:
    """The subject's rows in the lake that still say where they were or on what device."""
    if not (lake / "events").exists():
        return 0
    where = " OR ".join(f"{column} IS NOT NULL" for column in CLUES)
    query = f"SELECT count(*) AS n FROM events WHERE subject = $s AND ({where})"  # noqa: S608
    con = connect(lake)
    try:
        return int(fetch(con, query, {"s": subject})["n"][0])
    finally:
        con.close()


def _forged_erasures(env: dict[str, str], subjects: list[str]) -> list[Event]:
    attacker = Ed25519PrivateKey.generate()
    genuine = sign_event(
        sample_event("privacy.subject.erased", subject="u-other", signed=False),
        control_signing_key(Settings(data_dir=Path(env["FACTORSTREAM_DATA_DIR"]))),
    )
    forged: list[Event] = []
    for subject in subjects:
        unsigned = sample_event("privacy.subject.erased", subject=subject, signed=False)
        forged += [unsigned, sign_event(unsigned, attacker)]
    moved = sample_event("privacy.subject.erased", subject=subjects[0], signed=False)
    forged.append(
        msgspec.structs.replace(moved, signedby=genuine.signedby, signature=genuine.signature)
    )
    return forged


def _dlq_reason(record: Record) -> str:
    return dict(record.headers)["factorstream.dlq.reason"].decode()


def test_an_erased_subject_leaves_no_personal_data_in_the_lake_and_the_ledger_verifies(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = _worker_env(kafka_broker, topics, data_dir, free_port())
    lake = data_dir / "lake"
    sign_ins = [
        sample_event(kind, subject=subject, now=T0 + timedelta(minutes=n))
        for n, kind in enumerate(["auth.login.attempted", "mfa.verification.succeeded"] * 3)
        for subject in ("u-gone", "u-kept")
    ]
    with running_worker(env, tmp_path / "worker.log"):
        _produce(kafka_broker.bootstrap, topics.events, sign_ins)
        wait_for(
            lambda: _clues_of(lake, "u-gone") == 6,
            what="the subject's sign-ins in the lake",
            timeout=120,
        )

        # an attacker who can produce to the events topic forges erasures of both: unsigned,
        # signed with their own key, and a genuine signature moved to another subject
        forged = _forged_erasures(env, ["u-gone", "u-kept"])
        _produce(kafka_broker.bootstrap, topics.events, forged)
        dead = consume(kafka_broker.bootstrap, topics.dlq, at_least=len(forged), timeout_s=60)
        reasons = sorted(_dlq_reason(record) for record in dead)
        assert len(reasons) == len(forged), reasons
        assert sum("not signed" in r for r in reasons) == 2
        assert sum("not trust" in r for r in reasons) == 2
        assert sum("does not match" in r for r in reasons) == 1
        assert _clues_of(lake, "u-gone") == 6 and _clues_of(lake, "u-kept") == 6

        erased = _factorstream(
            env, "audit", "erase", "acme", "u-gone", "--requested-by", "dpo-1", "--yes"
        )
        assert erased.returncode == 0, erased.stdout + erased.stderr
        assert "published the erasure" in " ".join(erased.stdout.split())

        wait_for(lambda: _clues_of(lake, "u-gone") == 0, what="the lake redacted", timeout=120)
        rows = _sql(env, "SELECT subject, type, ip, data FROM events ORDER BY time, subject")
    gone = [row for row in rows if row["subject"] == "u-gone"]
    assert len(gone) == 7  # six sign-in events and the erasure: rows stay, counts too
    assert all(str(CLIENT.ip) not in str(row) for row in gone)
    assert [r["type"] for r in gone][-1] == "privacy.subject.erased"
    kept = [row for row in rows if row["subject"] == "u-kept"]
    assert len(kept) == 6 and all(row["ip"] == CLIENT.ip for row in kept)
    assert _clues_of(lake, "u-kept") == 6

    verified = _factorstream(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

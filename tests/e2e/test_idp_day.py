"""A day of an identity provider's logs, through its adapter, on the real broker, into a
real ``factorstream worker``, the lake, and the dashboard's queries: the provider's logs
get the same lockouts and detections as our own verifiers' events.

The day (``tests/e2e/idp_day.py``) is Auth0's Management API record format, saved as an
export; the adapter's backfill (``factorstream idp ingest auth0``) maps it
(``sources.auth0``) and delivers it to the events topic, and the worker does the rest
unchanged. What the dashboard lists is read as in ``test_scenarios_alone``: the
anomaly feed (``QUERIES["anomalies"]``) and the lockouts table its Lockouts page shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from analytics.queries import QUERIES, Filters
from analytics.views import connect, fetch
from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from tests.e2e.idp_day import BLOCKED_IP, DAY, SOURCE, TENANT, auth0_day
from tests.integration.test_worker import ROOT, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker

__all__ = ["topics"]  # the fixture, re-used from test_worker


def _ingest(tmp_path: Path, env: dict[str, str]) -> str:
    """The day through ``factorstream idp ingest auth0`` (the adapter's backfill of a saved
    export): its summary."""
    day = tmp_path / "auth0-day.jsonl"
    day.write_text("".join(json.dumps(record) + "\n" for record in auth0_day()))
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "idp", "ingest", "auth0", str(day)]
        + ["--tenant", TENANT, "--source", SOURCE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _listed(lake: Path) -> dict[str, set[Any]]:
    since, until = DAY, DAY.replace(day=DAY.day + 1)
    found: dict[str, set[Any]] = {"anomalies": set(), "lockouts": set()}
    if not (lake / "risk_detections").exists() or not (lake / "lockouts").exists():
        return found
    con = connect(lake)
    try:
        feed = QUERIES["anomalies"](con, Filters(since=since, until=until))
        found["anomalies"] = set(zip(feed["detection"], feed["subject"], strict=True))
        rows = fetch(
            con,
            "SELECT type, subject, scope, reason, ip FROM lockouts"
            " WHERE time >= $since AND time < $until",
            {"since": since, "until": until},
        )
        for kind, subject, scope, reason, ip in zip(
            rows["type"], rows["subject"], rows["scope"], rows["reason"], rows["ip"], strict=True
        ):
            found["lockouts"].add((kind, scope, reason, ip if kind.startswith("ip.") else subject))
    finally:
        con.close()
    return found


EXPECTED = {
    "anomalies": {("impossible_travel", "auth0|alice")},
    "lockouts": {
        ("lockout.applied", "subject", "max_failures", "auth0|bob"),
        ("lockout.applied", "factor", "otp_max_failures", "auth0|carol"),
        ("ip.block.applied", "ip", "idp_reported", BLOCKED_IP),
    },
}


def test_a_day_of_auth0_logs_gets_lockouts_and_detections_in_the_lake(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = _worker_env(kafka_broker, topics, data_dir, free_port())
    with running_worker(env, tmp_path / "worker.log") as worker:
        summary = _ingest(tmp_path, env)
        deadline = time.monotonic() + 240
        while True:
            listed = _listed(data_dir / "lake")
            missing = {k: v - listed[k] for k, v in EXPECTED.items() if v - listed[k]}
            if not missing or time.monotonic() > deadline:
                break
            assert worker.poll() is None, "the worker stopped"
            time.sleep(2)
    assert not missing, (missing, listed, summary)

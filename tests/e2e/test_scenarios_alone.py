"""Each attack scenario, run alone by the simulator through the real verifiers, through a
real ``factorstream worker`` on the real broker into the lake: the dashboard's anomaly feed
(the ``anomalies`` query) and its lockouts page list what the scenario must set off.

Every scenario is its own simulation (its own seed, so its own people and attackers) over
its own day, three days after the one before; the simulations go to the topic one after
the other, and the feed is read filtered to each one's days, as an auditor would filter
the dashboard. The unit tests check the same through the pure folds; this checks it
through everything the worker adds (ingest, enrichment, re-keying, the lake sink).
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics.queries import QUERIES, Filters
from analytics.views import connect, fetch
from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from factorstream.simulator.run import SimulationPlan
from factorstream.simulator.scenarios import ALSO_POSSIBLE, EXPECTED, SCENARIOS
from schemas import decode
from streams.topic_reading import group_lag
from tests.integration.test_worker import _produce, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.unit.simulator.conftest import run_verifiers

__all__ = ["topics"]  # the fixture, re-used from test_worker

FIRST = datetime(2026, 10, 2, tzinfo=UTC)
PLANS = {
    name: SimulationPlan(
        until=FIRST + timedelta(days=3 * index),
        seed=100 + index,
        users=6,
        days=1,
        scenarios=(name,),
    )
    for index, name in enumerate(SCENARIOS)
}
ALARMS = ("lockout.applied", "ip.block.applied")


def _listed(lake: Path, plan: SimulationPlan) -> set[str]:
    """What the dashboard lists for ``plan``'s days: ``risk.detected/<detection>`` from the
    anomaly feed, and the lockout and IP-block types from the lockouts table."""
    if not (lake / "risk_detections").exists() and not (lake / "lockouts").exists():
        return set()
    con = connect(lake)
    try:
        feed = QUERIES["anomalies"](con, Filters(since=plan.start, until=plan.until))
        found = {f"risk.detected/{detection}" for detection in feed["detection"]}
        types = fetch(
            con,
            "SELECT DISTINCT type FROM lockouts WHERE time >= $since AND time < $until",
            {"since": plan.start, "until": plan.until},
        )["type"]
    finally:
        con.close()
    return found | {kind for kind in types if kind in ALARMS}


def _caught_up(
    bootstrap: str, group: str, sources: list[str], worker: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 120
    while group_lag(bootstrap, group, sources) != 0:
        assert worker.poll() is None, "the worker stopped"
        assert time.monotonic() < deadline, f"the worker did not catch up with {sources}"
        time.sleep(0.5)


def test_each_scenario_alone_reaches_the_dashboards_feed(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = _worker_env(kafka_broker, topics, data_dir, free_port())
    app_id = env["FACTORSTREAM_STREAM__APP_ID"]
    sources = [topics.events, *(f"{app_id}-events-{name}" for name in ("ingested", "by-ip"))]
    sources.append(f"{app_id}-events-by-tenant")
    with running_worker(env, tmp_path / "worker.log") as worker:
        for name, plan in PLANS.items():
            values, _ = run_verifiers(tmp_path / f"{name}.db", **vars(plan))
            _produce(kafka_broker.bootstrap, topics.events, [decode(v) for v in values])
            # days arrive in order, as live traffic does: the per-tenant and per-IP folds
            # count an event at most their lateness (an hour) behind the newest they saw,
            # so a backlog of all the days at once could leave a day's events uncounted
            _caught_up(kafka_broker.bootstrap, app_id, sources, worker)
        deadline = time.monotonic() + 240
        while True:
            listed = {name: _listed(data_dir / "lake", plan) for name, plan in PLANS.items()}
            missing = {n: EXPECTED[n] - found for n, found in listed.items() if EXPECTED[n] - found}
            if not missing or time.monotonic() > deadline:
                break
            assert worker.poll() is None, "the worker stopped"
            time.sleep(2)
    assert not missing, (missing, listed)
    for name, found in listed.items():  # and nothing a scenario should not set off
        assert found <= EXPECTED[name] | ALSO_POSSIBLE[name], (name, found)

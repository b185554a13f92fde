"""``factorstream replay`` on the real broker: two replays of one log, one digest.

The command reads the events topic from its beginning into fresh tables (every fold of
the worker) and prints each table's state digest. Replaying the same log twice must give
the same digests; one more event must change them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from tests.integration.test_worker import (  # the worker harness, shared
    BUSINESS,
    ROOT,
    _failures,
    _produce,
    _worker_env,
    topics,  # noqa: F401 - a fixture
)
from tests.kafka_broker import KafkaBroker


def _replay(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", "replay", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_two_replays_of_one_log_give_one_digest_and_one_more_event_another(
    kafka_broker: KafkaBroker,
    topics: TopicSettings,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = _worker_env(kafka_broker, topics, tmp_path / "data", free_port())
    subjects = [f"u-{i}" for i in range(8)]
    _produce(
        kafka_broker.bootstrap,
        topics.events,
        [e for s in subjects for e in _failures(s, BUSINESS.max_failures)],
    )

    first, second = _replay(env), _replay(env)

    assert first["records"] == len(subjects) * BUSINESS.max_failures
    assert first["derived"].get("lockout.applied") == len(subjects)
    assert first["digest"]["entries"]["lockout"] == len(subjects)  # it folded something
    assert second["digest"] == first["digest"]

    _produce(kafka_broker.bootstrap, topics.events, _failures("u-late", 1))
    third = _replay(env)
    assert third["records"] == first["records"] + 1
    assert third["digest"]["overall"] != first["digest"]["overall"]
    assert third["digest"]["tables"]["lockout"] != first["digest"]["tables"]["lockout"]

"""``factorstream idp poll`` as a process against the fake Auth0 API and a real broker:
killed with SIGKILL mid-run and started again, every record's event reaches the topic,
none is lost, and after dropping repeated ids (as the worker does) each is there once.
A second poller of the same adapter is refused while the first runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sources.unmapped import Unmapped
from tests import idp_fakes as fakes
from tests.integration.records import consume, first_seen
from tests.kafka_broker import KafkaBroker
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[3]
PAGE = 20


@pytest.fixture
def idp() -> Iterator[fakes.FakeIdp]:
    yield from fakes.serve(fakes.FakeIdp())


def _env(kafka_broker: KafkaBroker, topic: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "FACTORSTREAM_DATA_DIR": str(data_dir),
            "FACTORSTREAM_TOPICS__EVENTS": topic,
            "FACTORSTREAM_IDP__PAGE_SIZE": str(PAGE),
            "FACTORSTREAM_IDP__POLL_INTERVAL_S": "0.2",
            "FACTORSTREAM_IDP__BACKOFF_INITIAL_S": "0.1",
        }
    )
    return env


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", "idp", *args],
        env=env, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _poll(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "factorstream.cli", "idp", "poll", "acme"],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _status(env: dict[str, str]) -> dict[str, Any]:
    done = _cli(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[0]))


def test_poll_killed_mid_run_resumes_from_its_cursor_with_nothing_lost_or_doubled(
    kafka_broker: KafkaBroker, topic: str, idp: fakes.FakeIdp, tmp_path: Path
) -> None:
    idp.auth0 = fakes.auth0_logs(600)
    idp.delay_s = 0.2  # a page every ~0.2 s (30 of them): the kill lands mid-run
    env = _env(kafka_broker, topic, tmp_path / "data")
    credentials = json.dumps({"client_id": "factorstream", "client_secret": "s3cret"})
    added = _cli(env, "add", "auth0", "acme", "--tenant", "acme", "--source", fakes.FAKE_SOURCE,
                 "--base-url", idp.base_url, "--credentials-file", "-",
                 stdin=credentials)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "s3cret" not in added.stdout + added.stderr

    log = tmp_path / "poll.log"
    cursor = tmp_path / "data" / "idp" / "cursors" / "acme.cursor.json"
    first = _poll(env, log)
    try:
        wait_for(lambda: cursor.exists() and json.loads(cursor.read_text())["delivered"] >= 100,
                 timeout=60, what="some pages")  # fmt: skip
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    killed_at = _status(env)
    assert killed_at["caught_up_at"] is None and killed_at["position"]["from"]

    idp.auth0 += fakes.auth0_logs(40, first=600)  # more while it was down
    second = _poll(env, log)
    try:
        wait_for(lambda: log.read_text().count(": polling auth0") == 2, timeout=30,
                 what="the second poller to hold the adapter")  # fmt: skip
        rival = _cli(env, "poll", "acme")
        assert rival.returncode == 1 and f"polled by process {second.pid}" in rival.stderr
        last_id = idp.auth0[-1]["log_id"]
        wait_for(lambda: _status(env)["position"].get("from") == last_id, timeout=90,
                 what="the restarted poller to catch up")  # fmt: skip
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, log.read_text()
    assert "acme: stopped" in log.read_text()

    expected = [e.id for e in map(fakes.auth0_mapper, idp.auth0) if not isinstance(e, Unmapped)]
    records = consume(kafka_broker.bootstrap, topic, at_least=len(expected))
    ids = [record.event().id for record in sorted(records, key=lambda r: r.offset)]
    assert set(ids) == set(expected), "an event is missing (or foreign)"
    assert sorted(first_seen(ids)) == sorted(expected)  # each once after dropping repeats
    assert len(ids) - len(expected) <= PAGE, "more than the page in flight was sent again"
    status = _status(env)
    assert status["unmapped"] == {"not_mfa": 128} and status["last_error"] is None


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_poll_waits_for_a_broker_that_is_down_and_stops_cleanly(
    idp: fakes.FakeIdp, tmp_path: Path, stop: signal.Signals
) -> None:
    from factorstream.localkafka import free_port

    idp.auth0 = fakes.auth0_logs(10)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env |= {"PYTHONPATH": str(ROOT), "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
            "FACTORSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # nobody there
            "FACTORSTREAM_IDP__BACKOFF_INITIAL_S": "0.2"}  # fmt: skip
    credentials = json.dumps({"client_id": "factorstream", "client_secret": "s3cret"})
    added = _cli(env, "add", "auth0", "acme", "--tenant", "acme", "--source", fakes.FAKE_SOURCE,
                 "--base-url", idp.base_url, "--credentials-file", "-",
                 stdin=credentials)  # fmt: skip
    assert added.returncode == 0, added.stderr
    log = tmp_path / "poll.log"
    poller = _poll(env, log)
    try:
        wait_for(lambda: log.read_text().count("error:") >= 2, timeout=60,
                 what="the poller to report the broker down, twice")  # fmt: skip
        assert poller.poll() is None, log.read_text()  # still waiting, not exited
    finally:
        poller.send_signal(stop)
        assert poller.wait(30) == 0, log.read_text()
    assert "acme: stopped" in log.read_text()
    status = _status(env)
    assert "cannot reach the broker" in status["last_error"] and status["position"] == {}

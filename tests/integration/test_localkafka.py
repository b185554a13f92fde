"""The local Apache Kafka broker (``factorstream.localkafka``, ``factorstream kafka``).

Real-broker tests use the session's ``kafka_broker`` (tests/kafka_broker.py) and, for the
CLI's whole up/status/down cycle, one more small broker of their own. The tests about
missing tools, stale pid files, busy ports and provisioning need no broker at all.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from typer.testing import CliRunner

from factorstream.cli import kafka as kafka_cli
from factorstream.localkafka import (
    BrokerStatus,
    KafkaUnavailable,
    LocalKafka,
    ensure_topics,
    new_cluster_id,
    provision,
    render_server_properties,
    topic_partitions,
)
from factorstream.settings import KAFKA_VERSION, Settings
from tests.kafka_broker import KafkaBroker, free_port, provisioned_or_missing

# --- against the session's broker --------------------------------------------------------


def test_broker_answers_with_the_pipeline_topics(kafka_broker: KafkaBroker) -> None:
    found = topic_partitions(kafka_broker.bootstrap)

    assert found["mfa.events"] == 6
    assert {name: found.get(name) for name in kafka_broker.topics} == kafka_broker.topics
    assert kafka_broker.local.status().running
    assert ensure_topics(kafka_broker.bootstrap, kafka_broker.topics) == []  # idempotent


def test_restart_after_a_crash_keeps_the_messages(kafka_broker: KafkaBroker) -> None:
    topic = f"test.localkafka.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(kafka_broker.bootstrap, {topic: 1}) == [topic]
    message = uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, key=b"tenant/subject", value=message).get(timeout=30)
    producer.close()
    pid_before = kafka_broker.local.running_pid()

    with kafka_broker.outage(hard=True):  # kill -9, then start on the same data dir
        assert not kafka_broker.local.status().running
        assert not kafka_broker.local.pid_file.exists()

    assert kafka_broker.local.running_pid() not in (None, pid_before)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,  # gives up (ends the iteration) if nothing arrives
    )
    first = next((record for record in consumer), None)
    consumer.close()
    assert first is not None and first.value == message


# --- the CLI, on a broker of its own -------------------------------------------------------


def test_cli_up_is_idempotent_status_reports_and_down_stops(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka_port=free_port())
    provisioned_or_missing(settings, KAFKA_VERSION)
    controller = ["--controller-port", str(free_port())]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(kafka_cli.app, list(args), obj=settings)
        return result.exit_code, " ".join(result.output.split())  # rich wraps long lines

    try:
        code, out = run("up", *controller)
        assert code == 0, out
        assert "running" in out and f"127.0.0.1:{settings.kafka_port}" in out
        assert "FACTORSTREAM_KAFKA_BOOTSTRAP" in out
        pid = LocalKafka(data_dir=tmp_path / "kafka", port=0, cache_dir=tmp_path).running_pid()
        assert pid is not None

        code, out = run("up", *controller)
        assert code == 0, out
        assert "already running" in out and str(pid) in out

        code, out = run("status")
        assert code == 0, out
        assert str(pid) in out and "mfa.events" in out
    finally:
        code, out = run("down")
    assert code == 0 and "stopped" in out, out

    code, out = run("status")
    assert code == 1 and "not running" in out
    code, out = run("down")
    assert code == 0 and "not running" in out


# --- no broker needed ------------------------------------------------------------------


def test_missing_java_and_maven_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(KafkaUnavailable) as provisioning:
        provision(KAFKA_VERSION, tmp_path / "cache")
    broker = LocalKafka(data_dir=tmp_path / "kafka", port=free_port(), cache_dir=tmp_path)
    with pytest.raises(KafkaUnavailable) as starting:
        broker.start()

    message = str(provisioning.value)
    assert "`java`" in message and "`mvn`" in message
    assert "JDK 17" in message and "Maven" in message
    assert "docker compose up kafka" in message
    assert "`java`" in str(starting.value) and "docker compose up kafka" in str(starting.value)
    result = CliRunner().invoke(
        kafka_cli.app,
        ["up", "--port", str(free_port()), "--data-dir", str(tmp_path / "cli")],
        obj=Settings(cache_dir=tmp_path / "cache"),
    )
    assert result.exit_code == 1
    assert "docker compose up kafka" in " ".join(result.output.split())


def _fake_tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    script = directory / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_provisioning_runs_maven_once_for_concurrent_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools, calls = tmp_path / "bin", tmp_path / "mvn-calls"
    _fake_tool(tools, "java", "exit 0")
    jar = f"libs/kafka_2.13-{KAFKA_VERSION}.jar"
    _fake_tool(tools, "mvn", f'echo "$@" >> {calls}; sleep 0.5; mkdir -p libs; touch {jar}')
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/usr/bin{os.pathsep}/bin")
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(provision(KAFKA_VERSION, tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    home = tmp_path / f"kafka-{KAFKA_VERSION}"
    assert results == [home / "libs"] * 3
    assert calls.read_text().splitlines() == [
        "-q -B dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime"
    ]
    assert f"<version>{KAFKA_VERSION}</version>" in (home / "pom.xml").read_text()
    assert provision(KAFKA_VERSION, tmp_path) == home / "libs"  # done: no second run
    assert len(calls.read_text().splitlines()) == 1


def test_failed_provisioning_reports_the_maven_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    _fake_tool(tools, "java", "exit 0")
    _fake_tool(tools, "mvn", "echo 'Could not resolve dependencies'; exit 1")
    monkeypatch.setenv("PATH", str(tools))

    with pytest.raises(KafkaUnavailable, match="Could not resolve dependencies"):
        provision(KAFKA_VERSION, tmp_path)
    assert not (tmp_path / f"kafka-{KAFKA_VERSION}" / ".complete").exists()


def _fake_provisioned_cache(cache: Path) -> None:
    home = cache / f"kafka-{KAFKA_VERSION}"
    (home / "libs").mkdir(parents=True)
    (home / ".complete").write_text("fake\n")


@pytest.mark.parametrize(
    ("broker_script", "expected"),
    [
        ('echo "ERROR broker exploded: bad config"; exit 3', "exited during start"),
        ("while :; do sleep 0.2; done", "did not answer"),
    ],
    ids=["dies", "stays-silent"],
)
def test_a_broker_that_dies_or_never_answers_is_reported_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker_script: str, expected: str
) -> None:
    tools = tmp_path / "bin"
    _fake_tool(
        tools,
        "java",
        f'case "$*" in *StorageTool*) exit 0;; esac\necho "ERROR broker exploded: bad config"\n'
        f"{broker_script}",
    )
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/usr/bin{os.pathsep}/bin")
    _fake_provisioned_cache(tmp_path / "cache")
    broker = LocalKafka(
        data_dir=tmp_path / "kafka",
        port=free_port(),
        controller_port=free_port(),
        cache_dir=tmp_path / "cache",
    )

    with pytest.raises(KafkaUnavailable, match=expected) as failure:
        broker.start(timeout=3)

    assert "broker exploded" in str(failure.value)  # the last lines of its output
    assert not broker.status().running and not broker.pid_file.exists()


def test_a_stale_or_foreign_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    broker = LocalKafka(data_dir=tmp_path, port=free_port(), cache_dir=tmp_path)
    assert not broker.status().running  # no pid file

    exited = subprocess.Popen(["true"])
    exited.wait()
    broker.pid_file.write_text(f"{exited.pid}\n")  # its process is gone
    assert broker.status() == BrokerStatus(
        running=False, pid=None, bootstrap=broker.bootstrap, data_dir=tmp_path.resolve()
    )

    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not this data dir's broker
    assert not broker.status().running
    assert broker.stop() is False
    assert not broker.pid_file.exists()


def test_a_busy_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(data_dir=tmp_path, port=port, cache_dir=tmp_path / "cache")
        with pytest.raises(KafkaUnavailable, match=f"port 127.0.0.1:{port} is already in use"):
            broker.start()
    assert not broker.pid_file.exists()


def test_broker_configuration_is_a_single_node_kraft_cluster(tmp_path: Path) -> None:
    properties = render_server_properties(
        host="127.0.0.1", port=39092, controller_port=39093, log_dir=tmp_path
    )
    lines = dict(line.split("=", 1) for line in properties.splitlines() if "=" in line)

    assert lines["process.roles"] == "broker,controller"
    assert lines["controller.quorum.bootstrap.servers"] == "127.0.0.1:39093"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert lines["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert lines["offsets.topic.replication.factor"] == "1"
    assert lines["transaction.state.log.replication.factor"] == "1"
    assert lines["log.dirs"] == str(tmp_path)

    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

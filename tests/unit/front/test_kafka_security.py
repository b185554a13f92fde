"""The kafka_security settings, the worker's Faust credentials, the local broker's secured
configuration and the pipeline's ACLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import ValidationError

from factorstream.kafka_access import pipeline_acls
from factorstream.localkafka import BrokerSecurity, render_server_properties, secured_properties
from factorstream.localtls import BrokerTls
from factorstream.settings import Settings, TopicSettings, environment
from streams.app import faust_credentials
from verifiers.kafka_connection import KafkaConnection

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-for-the-worker"
SECURED = {
    "FACTORSTREAM_KAFKA_BOOTSTRAP": "kafka.internal:9093",
    "FACTORSTREAM_KAFKA_SECURITY__PROTOCOL": "SASL_SSL",
    "FACTORSTREAM_KAFKA_SECURITY__USERNAME": "worker",
    "FACTORSTREAM_KAFKA_SECURITY__PASSWORD": PASSWORD,
    "FACTORSTREAM_KAFKA_SECURITY__CA_FILE": "/etc/kafka/ca.pem",
}


def test_settings_read_scram_over_tls_and_never_show_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECURED.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka() == KafkaConnection(
        bootstrap="kafka.internal:9093",
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username="worker",
        password=PASSWORD,
        ca_file=Path("/etc/kafka/ca.pem"),
    )
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.kafka()),
    ):
        assert PASSWORD not in shown
    # a child process (the worker the demo starts) gets it, and reads the same settings
    assert environment(settings)["FACTORSTREAM_KAFKA_SECURITY__PASSWORD"] == PASSWORD


def test_a_child_process_reads_the_same_connection_back(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECURED.items():
        monkeypatch.setenv(name, value)
    probe = "from factorstream.settings import Settings; print(repr(Settings().kafka().password))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": os.environ["PATH"], **environment(Settings())},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == repr(PASSWORD)


def test_incomplete_security_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORSTREAM_KAFKA_SECURITY__PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="needs a username and a password"):
        Settings()


def test_the_worker_gives_faust_scram_over_the_same_tls_context() -> None:
    secured = KafkaConnection(
        bootstrap="k:9093", protocol="SASL_SSL", username="worker", password=PASSWORD
    )
    credentials = faust_credentials(secured)
    assert credentials is not None
    assert credentials.protocol == AuthProtocol.SASL_SSL
    assert credentials.mechanism == SASLMechanism.SCRAM_SHA_512  # type: ignore[attr-defined]
    assert credentials.ssl_context.check_hostname  # type: ignore[attr-defined]
    assert PASSWORD not in repr(credentials)
    assert faust_credentials(KafkaConnection(bootstrap="k:9092")) is None
    tls_only = faust_credentials(KafkaConnection(bootstrap="k:9093", protocol="SSL"))
    assert tls_only is not None and tls_only.protocol == AuthProtocol.SSL


def test_a_secured_local_broker_has_no_plaintext_listener_and_denies_by_default(
    tmp_path: Path,
) -> None:
    security = BrokerSecurity(admin_user="admin", admin_password="pw-1")
    text = render_server_properties(
        host="127.0.0.1",
        port=9093,
        controller_port=9094,
        log_dir=tmp_path,
        secured=secured_properties(
            host="127.0.0.1",
            port=9093,
            controller_port=9094,
            security=security,
            tls=BrokerTls(tmp_path / "tls"),
        ),
    )
    properties = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert "PLAINTEXT" not in properties["listener.security.protocol.map"]
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == "User:admin;User:CN=factorstream-broker"
    assert "pw-1" not in repr(security)


@pytest.mark.parametrize("password", ["a,b", 'a"b', "a]b", "a b", "", "a\\b"])
def test_broker_credentials_cannot_break_out_of_their_quoting(password: str) -> None:
    with pytest.raises(ValueError, match="must be non-empty"):
        BrokerSecurity(admin_user="admin", admin_password=password)


def test_only_services_write_events_and_only_the_worker_writes_what_the_pipeline_trusts() -> None:
    topics = TopicSettings.under("t")
    grants = pipeline_acls(
        topics, app_id="fs", worker="worker", services=["svc-a", "svc-b"], auditors=["aud"]
    )
    writers: dict[str, set[str]] = {}
    for g in grants:
        if g.resource == "TOPIC" and g.operation in ("WRITE", "ALL"):
            writers.setdefault(g.name, set()).add(g.principal)
    assert writers.pop(topics.events) == {"User:svc-a", "User:svc-b"}
    assert writers == {
        name: {"User:worker"}
        for name in (topics.dlq, topics.lockouts, topics.anomalies, topics.checkpoints, "fs-")
    }
    readers = {g.principal for g in grants if g.operation == "READ" and g.name == topics.events}
    assert readers == {"User:worker"}  # personal data: not the services, not the auditors
    assert {g.principal for g in grants if g.name == topics.checkpoints} == {
        "User:worker",
        "User:aud",
    }

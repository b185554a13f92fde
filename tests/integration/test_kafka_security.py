"""Kafka security on a real broker: SCRAM over TLS with ACLs, tried as an attacker would.

The broker is the project's own local broker started secured (``LocalKafka`` with a
``BrokerSecurity``: a SASL_SSL listener only, the StandardAuthorizer); its users and ACLs
are made by ``factorstream.kafka_access``, the grants an operator applies. Each test gets
fresh pipeline topics with the grants of four principals: a service (``svc``), the worker,
an auditor and an authenticated ``intruder`` who was granted nothing.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka.errors import KafkaError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from factorstream.cli import app
from factorstream.kafka_access import grant, pipeline_acls, set_scram_user
from factorstream.localkafka import (
    BrokerSecurity,
    KafkaUnavailable,
    LocalKafka,
    ensure_pipeline_topics,
    free_port,
    topic_partitions,
)
from factorstream.localtls import issue_broker_tls
from factorstream.settings import Settings, TopicSettings
from schemas import Event, decode
from streams.topic_reading import read_to_end
from tests.factories import T0, sample_event
from tests.integration.conftest import sqlite_outbox
from tests.integration.test_worker import running_worker
from tests.kafka_broker import provisioned_or_missing
from verifiers.kafka_connection import KafkaConnection, ssl_context
from verifiers.publish import OutboxRelay, PublishFailed, kafka_producer_factory, publish_now

pytestmark = pytest.mark.integration

USERS = ("svc", "worker", "auditor", "intruder")


@dataclass(frozen=True)
class SecuredCluster:
    broker: LocalKafka
    passwords: dict[str, str]

    @property
    def admin(self) -> KafkaConnection:
        return self.broker.connection()

    def as_user(self, user: str, password: str | None = None) -> KafkaConnection:
        """SCRAM-SHA-512 over TLS as ``user``, trusting the broker's CA."""
        return replace(self.admin, username=user, password=password or self.passwords[user])


@dataclass(frozen=True)
class Pipeline:
    topics: TopicSettings
    app_id: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredCluster]:
    settings = Settings()
    broker = LocalKafka(
        data_dir=tmp_path_factory.mktemp("kafka-secured"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=settings.cache_dir,
        security=BrokerSecurity(admin_user="admin", admin_password=secrets.token_urlsafe(24)),
    )
    provisioned_or_missing(settings, broker.version)
    atexit.register(broker.kill)  # an interrupted session must not leave a JVM behind
    try:
        broker.start()
        passwords = {user: secrets.token_urlsafe(24) for user in USERS}
        for user, password in passwords.items():
            set_scram_user(broker.connection(), user, password)
        yield SecuredCluster(broker, passwords)
    finally:
        broker.stop()
        atexit.unregister(broker.kill)


@pytest.fixture
def pipeline(cluster: SecuredCluster) -> Pipeline:
    """Fresh pipeline topics, with the grants an operator gives each principal."""
    unique = uuid.uuid4().hex[:10]
    topics, app_id = TopicSettings.under(f"sec.{unique}"), f"sec-worker-{unique}"
    ensure_pipeline_topics(cluster.admin, topics)
    grant(
        cluster.admin,
        pipeline_acls(
            topics, app_id=app_id, worker="worker", services=["svc"], auditors=["auditor"]
        ),
    )
    # credentials and ACLs reach the broker's authorizer through the metadata log
    _eventually(lambda: topics.events in topic_partitions(cluster.as_user("svc"), timeout=10))
    return Pipeline(topics, app_id)


def _eventually(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except (KafkaUnavailable, KafkaError, PublishFailed):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.3)


def _not_authorised(refused: PublishFailed) -> bool:
    """The broker refused the write for want of a grant: the topic's, or (a principal that
    may write no topic at all) the idempotent producer's, which any topic's WRITE implies."""
    cause = refused.__cause__
    return isinstance(cause, TopicAuthorizationFailedError) or (
        isinstance(cause, KafkaError) and "ClusterAuthorizationFailed" in str(cause)
    )


def _forged_erasure() -> Event:
    """A control event an attacker would love: blank a subject's data everywhere."""
    return sample_event(
        "privacy.subject.erased", subject="u-victim", source="https://attacker.example"
    )


# -- who cannot even connect -----------------------------------------------------------------


def test_a_client_without_credentials_cannot_connect(
    cluster: SecuredCluster, pipeline: Pipeline
) -> None:
    bootstrap = cluster.broker.bootstrap
    plaintext = KafkaConnection(bootstrap=bootstrap)
    tls_only = KafkaConnection(bootstrap=bootstrap, protocol="SSL", ca_file=cluster.admin.ca_file)
    for anonymous in (plaintext, tls_only):
        with pytest.raises(KafkaUnavailable):
            topic_partitions(anonymous, timeout=3)
        with pytest.raises(PublishFailed):
            publish_now(
                [_forged_erasure()], kafka=anonymous, topic=pipeline.topics.events, timeout_s=5
            )


def test_a_wrong_password_is_refused(cluster: SecuredCluster, pipeline: Pipeline) -> None:
    guessed = cluster.as_user("svc", password="not-the-password")
    with pytest.raises(KafkaUnavailable):
        topic_partitions(guessed, timeout=3)
    with pytest.raises(PublishFailed):
        publish_now([_forged_erasure()], kafka=guessed, topic=pipeline.topics.events, timeout_s=3)


def test_a_client_verifies_the_broker_certificate_and_its_name(
    cluster: SecuredCluster, tmp_path: Path
) -> None:
    svc = cluster.as_user("svc")
    assert topic_partitions(svc, timeout=10) is not None  # trusting the right CA: fine
    other_ca = issue_broker_tls(tmp_path / "other", hosts=["127.0.0.1"], now=datetime.now(UTC))
    impostor_trust = [replace(svc, ca_file=None), replace(svc, ca_file=other_ca.ca_file)]
    for trust in impostor_trust:  # the system's CAs, or another CA: the broker is a stranger
        with pytest.raises(KafkaUnavailable):
            topic_partitions(trust, timeout=3)
    # the context every client gets checks the name: the right CA, the wrong host name
    context = ssl_context(svc)
    assert context is not None
    host, port = cluster.broker.host, cluster.broker.port
    with socket.create_connection((host, port), timeout=3) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
            context.wrap_socket(raw, server_hostname="kafka.attacker.example")
    with socket.create_connection((host, port), timeout=3) as raw:
        with context.wrap_socket(raw, server_hostname=host) as verified:
            assert verified.version() in ("TLSv1.2", "TLSv1.3")


# -- who is authenticated but not authorised ---------------------------------------------------


def test_an_authenticated_intruder_cannot_write_control_events(
    cluster: SecuredCluster, pipeline: Pipeline
) -> None:
    intruder = cluster.as_user("intruder")
    with pytest.raises(PublishFailed) as refused:
        publish_now([_forged_erasure()], kafka=intruder, topic=pipeline.topics.events, timeout_s=10)
    assert _not_authorised(refused.value)
    with pytest.raises((LookupError, KafkaError)):  # nor read anyone's personal data
        list(read_to_end(intruder, pipeline.topics.events, timeout_s=3))


@pytest.mark.parametrize("user", ["intruder", "svc", "auditor"])
def test_only_the_worker_writes_the_derived_topics(
    cluster: SecuredCluster, pipeline: Pipeline, user: str
) -> None:
    """A forged unlock, detection, dead letter or checkpoint: refused even to a service."""
    names = pipeline.topics
    forged_unlock = sample_event("lockout.cleared", subject="u-victim")
    for topic in (names.lockouts, names.anomalies, names.dlq, names.checkpoints):
        with pytest.raises(PublishFailed) as refused:
            publish_now([forged_unlock], kafka=cluster.as_user(user), topic=topic, timeout_s=10)
        assert _not_authorised(refused.value), topic


# -- the project's own clients, with their principals -----------------------------------------


def test_the_service_relays_its_outbox_and_the_auditor_reads_only_checkpoints(
    cluster: SecuredCluster, pipeline: Pipeline, tmp_path: Path
) -> None:
    names = pipeline.topics
    outbox = sqlite_outbox(tmp_path / "service.db")
    events = [sample_event("mfa.verification.succeeded", subject=f"u-{i}") for i in range(5)]
    with outbox.engine.begin() as tx:
        outbox.add(tx, events)
    relay = OutboxRelay(
        outbox, topic=names.events, producer_factory=kafka_producer_factory(cluster.as_user("svc"))
    )
    relay.drain(timeout_s=60)
    stored = list(read_to_end(cluster.admin, names.events, timeout_s=10))
    assert sorted(decode(r.value or b"", r.headers).id for r in stored) == sorted(
        e.id for e in events
    )
    auditor = cluster.as_user("auditor")
    assert list(read_to_end(auditor, names.checkpoints, timeout_s=10)) == []  # allowed, empty
    with pytest.raises((LookupError, KafkaError)):
        list(read_to_end(auditor, names.events, timeout_s=3))


def test_a_worker_folds_and_checkpoints_on_the_secured_cluster_as_itself(
    cluster: SecuredCluster, pipeline: Pipeline, tmp_path: Path
) -> None:
    """``factorstream worker`` reads its settings (SCRAM user, password, CA) and runs with
    only the worker's grants: ingest, folds, changelogs, lockouts, the ledger's checkpoints."""
    names, worker = pipeline.topics, cluster.as_user("worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env |= {
        "FACTORSTREAM_KAFKA_BOOTSTRAP": worker.bootstrap,
        "FACTORSTREAM_KAFKA_SECURITY__PROTOCOL": "SASL_SSL",
        "FACTORSTREAM_KAFKA_SECURITY__USERNAME": "worker",
        "FACTORSTREAM_KAFKA_SECURITY__PASSWORD": cluster.passwords["worker"],
        "FACTORSTREAM_KAFKA_SECURITY__CA_FILE": str(worker.ca_file),
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FACTORSTREAM_STREAM__APP_ID": pipeline.app_id,
        "FACTORSTREAM_STREAM__WEB_PORT": str(free_port()),
        "FACTORSTREAM_STREAM__STANDBY_REPLICAS": "0",
        "FACTORSTREAM_LEDGER__CHECKPOINT_INTERVAL_S": "1",
        **{f"FACTORSTREAM_TOPICS__{k.upper()}": str(v) for k, v in names.model_dump().items()},
    }
    failures = [
        sample_event("auth.login.attempted", subject="u-lock", now=T0 + timedelta(seconds=10 * i))
        for i in range(10)
    ]
    log = tmp_path / "worker.log"
    with running_worker(env, log) as process:
        publish_now(failures, kafka=cluster.as_user("svc"), topic=names.events)

        def locked() -> bool:
            assert process.poll() is None, log.read_text()[-4000:]
            derived = read_to_end(cluster.admin, names.lockouts, timeout_s=10)
            return any(decode(r.value or b"", r.headers).subject == "u-lock" for r in derived)

        _eventually(locked, timeout_s=180)
        auditor = cluster.as_user("auditor")
        _eventually(lambda: bool(list(read_to_end(auditor, names.checkpoints, timeout_s=10))), 60)
    text = log.read_text()
    assert "AuthorizationFailed" not in text and "AuthenticationFailed" not in text, text[-4000:]


def test_the_operator_grants_the_acls_with_the_cli(cluster: SecuredCluster) -> None:
    """``factorstream kafka grant``, run as the admin from its settings: the service named
    may write the events topic, a principal not named may not."""
    topics = TopicSettings.under(f"sec.cli.{uuid.uuid4().hex[:10]}")
    ensure_pipeline_topics(cluster.admin, topics)
    admin = cluster.admin
    env = {
        "FACTORSTREAM_KAFKA_BOOTSTRAP": admin.bootstrap,
        "FACTORSTREAM_KAFKA_SECURITY__PROTOCOL": "SASL_SSL",
        "FACTORSTREAM_KAFKA_SECURITY__USERNAME": admin.username or "",
        "FACTORSTREAM_KAFKA_SECURITY__PASSWORD": admin.password or "",
        "FACTORSTREAM_KAFKA_SECURITY__CA_FILE": str(admin.ca_file),
        **{f"FACTORSTREAM_TOPICS__{k.upper()}": str(v) for k, v in topics.model_dump().items()},
    }
    result = CliRunner().invoke(
        app, ["kafka", "grant", "--worker", "worker", "--service", "svc"], env=env
    )
    assert result.exit_code == 0, result.output
    assert admin.password not in result.output
    event = sample_event("mfa.verification.succeeded")
    _eventually(
        lambda: publish_now([event], kafka=cluster.as_user("svc"), topic=topics.events) is None
    )
    with pytest.raises(PublishFailed) as refused:
        publish_now([event], kafka=cluster.as_user("intruder"), topic=topics.events)
    assert _not_authorised(refused.value)

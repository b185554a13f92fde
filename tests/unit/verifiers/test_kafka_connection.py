"""One connection value, translated once for each Kafka client library: SCRAM and TLS as
configured, certificates and host names always checked, the password never shown."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest

from factorstream.localtls import issue_broker_tls
from verifiers.kafka_connection import (
    KafkaConnection,
    aiokafka_config,
    as_connection,
    kafka_python_config,
    ssl_context,
)

PASSWORD = "correct-horse-battery-staple"


def _secured(tmp_path: Path) -> KafkaConnection:
    tls = issue_broker_tls(tmp_path / "tls", hosts=["127.0.0.1"], now=datetime.now(UTC))
    return KafkaConnection(
        bootstrap="k1:9093, k2:9093",
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username="svc-login",
        password=PASSWORD,
        ca_file=tls.ca_file,
    )


def test_a_bootstrap_string_is_a_plaintext_connection() -> None:
    assert as_connection("a:1,b:2") == KafkaConnection(bootstrap="a:1,b:2")
    assert kafka_python_config("a:1,b:2") == {
        "bootstrap_servers": ["a:1", "b:2"],
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("config", [kafka_python_config, aiokafka_config])
def test_scram_over_tls_for_every_client_library(config: object, tmp_path: Path) -> None:
    connection = _secured(tmp_path)
    kwargs = config(connection)  # type: ignore[operator]
    assert kwargs["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc-login", PASSWORD)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1  # the configured CA, not the system's


def test_without_a_ca_file_the_system_cas_are_trusted_still_verified() -> None:
    context = ssl_context(KafkaConnection(bootstrap="k:9093", protocol="SSL"))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert ssl_context(KafkaConnection(bootstrap="k:9092")) is None


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    connection = _secured(tmp_path)
    for text in (repr(connection), str(connection), connection.describe()):
        assert PASSWORD not in text
    assert connection.describe() == "k1:9093, k2:9093 (SASL_SSL as svc-login)"


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"protocol": "SASL_SSL", "username": "u"}, "needs a username and a password"),
        ({"protocol": "SASL_PLAINTEXT", "password": "p"}, "needs a username and a password"),
        ({"username": "u", "password": "p"}, "only used with SASL"),
        ({"ca_file": Path("ca.pem")}, "only used with TLS"),
        ({"protocol": "SSL", "cert_file": Path("c.pem")}, "needs its key"),
        ({"bootstrap": " "}, "no broker address"),
    ],
)
def test_inconsistent_security_is_refused_by_name(
    fields: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        KafkaConnection(**{"bootstrap": "k:9092", **fields})  # type: ignore[arg-type]

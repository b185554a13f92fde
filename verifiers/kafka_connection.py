"""How every Kafka client of the project reaches the cluster: one value, one translation.

A :class:`KafkaConnection` says where the brokers are and how a client proves who it is
(SASL/SCRAM) and checks who the broker is (TLS, against a CA, host name included). Each
client library is configured from it here and nowhere else: kafka-python
(:func:`kafka_python_config`: the relay's producer, admin clients, the topic readers),
aiokafka (:func:`aiokafka_config`), and Faust through :func:`ssl_context` (the worker
builds its ``broker_credentials`` from the same value, ``streams.app``).

The front door reads the value from its settings (``kafka_bootstrap`` and the
``kafka_security`` group); a service using this library builds it itself. A bare
bootstrap string stands for a PLAINTEXT connection (:func:`as_connection`), the local
default. The password is never part of the value's ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

SecurityProtocol: TypeAlias = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism: TypeAlias = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]

SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how a client authenticates to them.

    ``protocol`` is Kafka's ``security.protocol``. With SASL (``SASL_SSL``,
    ``SASL_PLAINTEXT``) the client signs in as ``username`` with ``password`` by
    ``sasl_mechanism``; with TLS (``SSL``, ``SASL_SSL``) it trusts the brokers whose
    certificate ``ca_file`` (PEM) signed, or the system's CAs without one, and always
    checks that the certificate names the host it connected to. ``cert_file`` and
    ``key_file`` (PEM) are a client certificate for brokers that require one (mTLS).
    """

    bootstrap: str
    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ValueError("kafka_bootstrap: no broker address")
        if self.protocol in SASL_PROTOCOLS and not (self.username and self.password):
            raise ValueError(
                f"kafka_security: protocol {self.protocol} needs a username and a password"
            )
        if self.protocol not in SASL_PROTOCOLS and (self.username or self.password):
            raise ValueError(
                f"kafka_security: a username or password is only used with SASL "
                f"(SASL_SSL), not with protocol {self.protocol}"
            )
        if self.protocol not in TLS_PROTOCOLS and (self.ca_file or self.cert_file):
            raise ValueError(
                f"kafka_security: CA and client certificate files are only used with TLS "
                f"(SSL, SASL_SSL), not with protocol {self.protocol}"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("kafka_security: a client certificate needs its key, and back")

    @property
    def servers(self) -> list[str]:
        """The bootstrap servers, one ``host:port`` each."""
        return [host.strip() for host in self.bootstrap.split(",") if host.strip()]

    @property
    def uses_tls(self) -> bool:
        return self.protocol in TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in SASL_PROTOCOLS

    def describe(self) -> str:
        """Where and how, fit for a log line or a message (never the password)."""
        who = f" as {self.username}" if self.uses_sasl else ""
        return f"{self.bootstrap} ({self.protocol}{who})"


KafkaTarget: TypeAlias = KafkaConnection | str
"""What a client function takes: a connection, or a bare bootstrap string (PLAINTEXT)."""


def as_connection(target: KafkaTarget) -> KafkaConnection:
    """``target`` as a connection: a bootstrap string is a PLAINTEXT one."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(bootstrap=target)


def ssl_context(connection: KafkaConnection) -> ssl.SSLContext | None:
    """The TLS context of ``connection`` (``None`` without TLS): TLS 1.2 or later, the
    broker's certificate verified against ``ca_file`` (or the system's CAs) and its host
    name checked; the client certificate loaded when one is given."""
    if not connection.uses_tls:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(connection.ca_file) if connection.ca_file is not None else None,
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if connection.cert_file is not None and connection.key_file is not None:
        context.load_cert_chain(str(connection.cert_file), str(connection.key_file))
    return context


def _security(connection: KafkaConnection) -> dict[str, Any]:
    """The keywords kafka-python and aiokafka share (their names agree)."""
    config: dict[str, Any] = {"security_protocol": connection.protocol}
    if connection.uses_tls:
        config["ssl_context"] = ssl_context(connection)
    if connection.uses_sasl:
        config |= {
            "sasl_mechanism": connection.sasl_mechanism,
            "sasl_plain_username": connection.username,
            "sasl_plain_password": connection.password,
        }
    return config


def kafka_python_config(target: KafkaTarget) -> dict[str, Any]:
    """Keyword arguments for a kafka-python client (``KafkaProducer``, ``KafkaConsumer``,
    ``KafkaAdminClient``): the servers and the security of ``target``."""
    connection = as_connection(target)
    return {"bootstrap_servers": connection.servers, **_security(connection)}


def aiokafka_config(target: KafkaTarget) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (``AIOKafkaProducer``, ``AIOKafkaConsumer``)."""
    connection = as_connection(target)
    return {"bootstrap_servers": connection.servers, **_security(connection)}


async def broker_reachable(servers: Sequence[str], *, timeout_s: float = 2.0) -> bool:
    """Whether a TCP connection to any of the bootstrap ``servers`` (``host:port``) opens
    within ``timeout_s``: the readiness probes' broker check (cheap, and the same with TLS
    or SASL)."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), timeout_s
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False

"""TLS for a local broker: a private certificate authority and the broker's certificate.

``factorstream kafka up`` with SASL_SSL (and the tests' secured broker) needs a server
certificate that clients can verify, host name included. :func:`issue_broker_tls` makes
a CA of its own and one certificate for the broker (EC P-256, valid for the names and
addresses given), as PEM files the broker reads (``ssl.keystore.type=PEM``) and clients
trust (``kafka_security.ca_file``). The CA's private key is never written: nothing else
can be signed with it, and a new broker certificate means a new CA.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_COMMON_NAME = "factorstream-broker"
"""The broker certificate's subject: its principal is ``User:CN=factorstream-broker`` on a
listener that asks for client certificates (the controller listener)."""
VALIDITY = timedelta(days=825)


@dataclass(frozen=True)
class BrokerTls:
    """The PEM files of a local broker's TLS, in one directory."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate: what clients trust."""
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        """The broker's private key (PKCS#8) and certificate chain: what it presents."""
        return self.directory / "broker.pem"

    @property
    def principal(self) -> str:
        """The Kafka principal of the broker's certificate."""
        return f"User:CN={BROKER_COMMON_NAME}"

    def exists(self) -> bool:
        return self.ca_file.exists() and self.keystore_file.exists()


def issue_broker_tls(directory: Path, *, hosts: list[str], now: datetime) -> BrokerTls:
    """A new CA and a broker certificate for ``hosts`` (names or IP addresses) in
    ``directory`` (``0700``; the key file ``0600``), replacing any there."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "factorstream local Kafka CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_COMMON_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = BrokerTls(directory)
    pem = serialization.Encoding.PEM
    _write_private(
        tls.keystore_file,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + certificate.public_bytes(pem)
        + ca.public_bytes(pem),
    )
    _write_private(tls.ca_file, ca.public_bytes(pem))
    return tls


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (whatever the umask)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)

"""The assertion signing keys: created private, identified by their thumbprint, rotated
without breaking assertions already issued; the client credentials: stored hashed."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verifiers.service.assertions import (
    ACR_MFA,
    AMR_TOTP,
    AssertionKeys,
    AssertionRequest,
    key_id,
    sign_assertion,
)
from verifiers.service.clients import ServiceClients
from verifiers.service.middleware import MfaRefused, require_mfa
from verifiers.store import store_engine

from ..conftest import make_store, raw_dump
from .conftest import START


def step_up(audience: str = "https://app.example") -> AssertionRequest:
    return AssertionRequest(
        issuer="https://mfa.test",
        subject="alice",
        tenant="acme",
        audience=audience,
        amr=AMR_TOTP,
        acr=ACR_MFA,
        auth_time=START,
        lifetime=timedelta(minutes=5),
    )


def test_the_key_id_is_the_rfc_7638_thumbprint() -> None:
    """RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key."""
    x = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert key_id(Ed25519PublicKey.from_public_bytes(x)) == (
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_the_signing_key_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = AssertionKeys(path)
    again = AssertionKeys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.kid == again.kid
    assert [jwk["kid"] for jwk in first.jwks()["keys"]] == [first.kid]


def test_rotation_keeps_the_old_public_key_published(tmp_path: Path) -> None:
    keys = AssertionKeys(tmp_path / "signing.pem")
    old_kid = keys.kid
    issued_before = sign_assertion(keys, step_up(), now=START)

    new_kid = keys.rotate()
    issued_after = sign_assertion(keys, step_up(), now=START)
    reopened = AssertionKeys(tmp_path / "signing.pem")

    assert new_kid != old_kid and reopened.kid == new_kid
    assert [jwk["kid"] for jwk in reopened.jwks()["keys"]] == [new_kid, old_kid]
    gate = require_mfa(keys=reopened.jwks(), audience="https://app.example", clock=lambda: START)
    for token in (issued_before, issued_after):
        assert gate.check(f"Bearer {token}")["sub"] == "alice"
    assert jwt.get_unverified_header(issued_after)["kid"] == new_kid
    # a key removed from the JWKS no longer verifies what it signed
    (tmp_path / f"signing.pem.retired-{old_kid}.pub.pem").unlink()
    pruned = require_mfa(
        keys=AssertionKeys(tmp_path / "signing.pem").jwks(),
        audience="https://app.example",
        clock=lambda: START,
    )
    with pytest.raises(MfaRefused, match="no known key"):
        pruned.check(f"Bearer {issued_before}")


def test_a_running_service_publishes_a_key_rotated_by_another_process(tmp_path: Path) -> None:
    running = AssertionKeys(tmp_path / "signing.pem")
    old_kid = running.kid
    new_kid = AssertionKeys(tmp_path / "signing.pem").rotate()  # `service-keys rotate`

    assert running.kid == old_kid  # it signs with the key it loaded until restarted
    assert [jwk["kid"] for jwk in running.jwks()["keys"]] == [old_kid, new_kid]


def test_a_client_credential_is_stored_only_as_its_hash(tmp_path: Path) -> None:
    store = make_store(f"sqlite:///{tmp_path / 'verifiers.db'}")
    clients = ServiceClients(store.engine)
    issued = clients.add(tenant="acme", audience=None, label="login", now=START)
    secret = issued.credential.split(".", 1)[1]

    assert secret.encode() not in raw_dump(store)
    assert clients.authenticate(issued.credential) == issued.client
    assert issued.client.audience == "acme"
    assert clients.authenticate(issued.credential[:-1] + "A") is None or secret.endswith("A")
    assert clients.authenticate(issued.credential.replace("fsc_", "")) is None
    assert clients.authenticate(f"fsc_{'0' * 16}.{secret}") is None  # another id, same secret
    assert clients.revoke(issued.client.client_id, now=START)
    assert not clients.revoke(issued.client.client_id, now=START)  # already revoked
    assert clients.authenticate(issued.credential) is None
    assert [c.revoked_at for c in ServiceClients(store_engine(str(store.engine.url))).list()] == [
        START
    ]

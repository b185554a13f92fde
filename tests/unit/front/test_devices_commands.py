"""``factorstream devices list|revoke`` and ``audit erase`` end a subject's trusted devices
at once: the next presentation of the token is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from factorstream.service_config import service_config
from factorstream.settings import Settings
from tests.unit.front.test_service_commands import factorstream
from verifiers import trusted_devices as td
from verifiers.service.server import open_store
from verifiers.store import Request, VerifierStore


def request(subject: str = "alice") -> Request:
    return Request(tenant="acme", subject=subject, correlationid="c-1", now=datetime.now(UTC))


def judged(store: VerifierStore, token: str, subject: str = "alice") -> str | None:
    with store.step(request(subject), factor=None) as step:
        return td.check(store, step, token=token, device_id="laptop-fp").reason


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VerifierStore:
    """The verifier store the CLI opens from the settings (data_dir = tmp_path)."""
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path))
    return open_store(service_config(Settings()))


def trusted(store: VerifierStore, subject: str = "alice") -> td.Trusted:
    made = td.trust(store, request(subject), device_id="laptop-fp", device_name="Work laptop")
    assert made.token is not None and made.trust_id is not None
    return made


def test_an_administrator_lists_and_revokes_a_trusted_device(
    store: VerifierStore, tmp_path: Path
) -> None:
    made, kept = trusted(store), trusted(store, "bob")
    assert made.token is not None and made.trust_id is not None and kept.token is not None

    listed = factorstream(tmp_path, "devices", "list", "acme", "alice").stdout
    revoked = factorstream(
        tmp_path, "devices", "revoke", "acme", "alice", made.trust_id, "--by", "admin-7"
    )
    again = factorstream(
        tmp_path, "devices", "revoke", "acme", "alice", made.trust_id, "--by", "a", check=False
    )
    vague = factorstream(tmp_path, "devices", "revoke", "acme", "alice", "--by", "a", check=False)
    history = factorstream(tmp_path, "devices", "list", "acme", "alice", "--all").stdout

    assert made.trust_id in listed and "Work laptop" in listed and made.token not in listed
    assert "1 trusted device(s) of acme/alice revoked" in revoked.stdout
    assert judged(store, made.token) == "revoked"  # at once
    assert again.returncode == 1 and "no trusted device" in again.stderr
    assert vague.returncode == 1 and "--all" in vague.stderr
    assert "revoked" in history and "admin-7" in history
    assert judged(store, kept.token, "bob") is None  # bob's device is untouched


def test_an_erasure_ends_every_trusted_device_of_the_subject_at_once(
    store: VerifierStore, tmp_path: Path
) -> None:
    made, kept = trusted(store), trusted(store, "bob")
    assert made.token is not None and kept.token is not None

    erased = factorstream(
        tmp_path,
        "audit",
        "erase",
        "acme",
        "alice",
        "--requested-by",
        "dpo-1",
        "--yes",
        "--no-publish",
    )

    assert "trusted devices: 1 of the subject ended" in erased.stdout.replace("\n", " ")
    assert judged(store, made.token) == "unknown_token"
    assert td.list_devices(store, tenant="acme", subject="alice") == []
    assert judged(store, kept.token, "bob") is None

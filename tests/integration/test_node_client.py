"""A relying party in Node.js with no factorstream code (tests/integration/node/client.mjs):
it enrols TOTP over HTTP with codes from oathtool, steps up and verifies the MFA assertion
with the npm package ``jose`` (pinned by package-lock.json, installed with ``npm ci``)
against the service's JWKS; jose and the Python middleware both refuse the token tampered
with, expired, for another audience, or re-signed by another key.

Without node, npm or oathtool the test is skipped locally and fails in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_service_cli import (  # noqa: F401 - the served fixture
    Served,
    cli,
    served,
    tool,
)
from tests.support import missing
from verifiers.service.middleware import MfaRefused, require_mfa

NODE_CLIENT = Path(__file__).resolve().parent / "node"
AUDIENCE = "https://payroll.example"


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's dependencies, installed exactly as package-lock.json pins them
    (``npm ci``: the lock must match package.json, integrity hashes are checked)."""
    npm = tool("npm")
    work = tmp_path_factory.mktemp("node-client")
    for name in ("package.json", "package-lock.json", "client.mjs"):
        shutil.copy(NODE_CLIENT / name, work / name)
    cache = Path(os.environ.get("NPM_CONFIG_CACHE", Path.home() / ".npm"))
    installed = subprocess.run(  # noqa: S603 - npm from PATH, our lock file
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--cache", str(cache)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        missing("npm ci", installed.stderr[-500:])
    return work


def test_a_node_client_with_jose_enrols_steps_up_and_verifies_the_assertion(
    served: Served,  # noqa: F811
    node_modules: Path,
) -> None:
    node = tool("node")
    tool("oathtool")
    credential = cli(served.env, "clients", "add", "--tenant", "acme", "--audience", AUDIENCE)
    env = {
        "PATH": os.environ["PATH"],
        "SERVICE": served.url,
        "CREDENTIAL": credential.stdout.strip(),
        "AUDIENCE": AUDIENCE,
        "SUBJECT": "alice",
    }

    done = subprocess.run(  # noqa: S603
        [node, "client.mjs"], cwd=node_modules, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    steps = {line["step"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert steps["enrol"]["status"] == 201
    assert steps["confirm"]["status"] == 200
    assert steps["verify"] == {"step": "verify", "status": 200, "amr": ["otp", "mfa"]}
    assert steps["jose"]["alg"] == "EdDSA"
    assert (steps["jose"]["sub"], steps["jose"]["tenant"]) == ("alice", "acme")
    assert steps["refused"] == {
        "step": "refused",
        "tampered": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
        "expired": "ERR_JWT_EXPIRED",
        "wrong_audience": "ERR_JWT_CLAIM_VALIDATION_FAILED",
        "foreign_key": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    }

    # the Python middleware agrees on the same tokens
    tokens = steps["token"]
    jwks_url = f"{served.url}/.well-known/jwks.json"
    gate = require_mfa(jwks_url=jwks_url, audience=AUDIENCE, issuer=served.url)
    assert gate.check(f"Bearer {tokens['token']}")["sub"] == "alice"
    for forged in (tokens["tampered"], tokens["resigned"]):
        with pytest.raises(MfaRefused):
            gate.check(f"Bearer {forged}")
    elsewhere = require_mfa(jwks_url=jwks_url, audience="https://elsewhere.example")
    with pytest.raises(MfaRefused, match="audience"):
        elsewhere.check(f"Bearer {tokens['token']}")
    later = datetime.now(UTC) + timedelta(hours=1)
    expired = require_mfa(jwks_url=jwks_url, audience=AUDIENCE, clock=lambda: later)
    with pytest.raises(MfaRefused, match="expired"):
        expired.check(f"Bearer {tokens['token']}")


def test_the_node_client_pins_jose_exactly() -> None:
    package = json.loads((NODE_CLIENT / "package.json").read_text())
    lock = json.loads((NODE_CLIENT / "package-lock.json").read_text())
    version = package["dependencies"]["jose"]
    assert version[0].isdigit(), "pin an exact version, no range"
    assert lock["packages"]["node_modules/jose"]["version"] == version
    assert lock["packages"]["node_modules/jose"]["integrity"].startswith("sha512-")

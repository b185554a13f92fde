"""``factorstream override`` end to end: administrators are real dashboard users (password
and TOTP for each step), the events land signed in the verifiers' outbox, and the code an
approval prints lets the locked-out person in once through the real MFA service over HTTP.

The CLI runs on the wall clock, so the subject is locked just before (business tier: for
3 minutes) and each administrator's TOTP code is taken at the moment of the step; a second
step by the same administrator uses the next time step's code (the replay guard refuses the
same one twice)."""

from __future__ import annotations

import http.client
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import typer
from typer.testing import CliRunner, Result

from factorstream.cli import dashboard as users_cli
from factorstream.cli import override as override_cli
from factorstream.cli.context import console, load_into
from factorstream.control_keys import trusted_control_keys
from factorstream.service_config import service_config
from factorstream.settings import load_settings
from schemas.signing import check_producer
from tests.unit.verifiers.override_support import (
    SUBJECT,
    TENANT,
    lock,
    sign_in_request,
    staged,
)
from tests.unit.verifiers.service.conftest import start_server, stop_server
from verifiers.service.api import create_app
from verifiers.service.assertions import ACR_TEMPORARY_ACCESS
from verifiers.service.server import close_parts, open_parts, open_store
from verifiers.store import VerifierStore

PASSWORD = "correct horse battery staple"
Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(console, "width", 200)  # the list's table on one line per request
    root = typer.Typer()
    root.callback()(load_into)
    root.add_typer(users_cli.app, name="users")
    root.add_typer(override_cli.app, name="override")
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(root, list(args), input=stdin)

    return invoke


class Admins:
    """Dashboard users made with ``users add``; each one's authenticator."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.authenticators: dict[str, pyotp.TOTP] = {}

    def add(self, name: str, role: str) -> None:
        added = self.run("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD)
        assert added.exit_code == 0, added.output
        secret = re.search(r"secret \(base32\): ([A-Z2-7]+)", added.output)
        assert secret is not None
        self.authenticators[name] = pyotp.TOTP(secret.group(1))

    def as_(self, name: str, *, step: int = 0, password: str = PASSWORD) -> dict[str, Any]:
        """The sign-in options of ``name`` now (``step``: a later time step's code)."""
        at = datetime.now(UTC) + timedelta(seconds=30 * step)
        code = self.authenticators[name].at(at)
        return {"args": ("--as", name, "--password-stdin", "--code", code), "stdin": password}


def _call(run: Run, *args: str, who: dict[str, Any]) -> Result:
    return run("override", *args, *who["args"], stdin=who["stdin"])


def _ask(run: Run, action: str, *options: str, who: dict[str, Any]) -> Result:
    """``override request`` of :data:`SUBJECT` for ``action``."""
    return _call(run, "request", TENANT, SUBJECT, "--action", action, *options, who=who)


@pytest.fixture
def admins(run: Run) -> Admins:
    made = Admins(run)
    for name, role in [("alice", "admin"), ("bob", "admin"), ("carol", "auditor")]:
        made.add(name, role)
    return made


@pytest.fixture
def store(run: Run) -> Iterator[VerifierStore]:
    opened = open_store(service_config(load_settings()))
    yield opened
    opened.engine.dispose()


def _request_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    found = re.search(r"request (\w{32})", result.output)
    assert found is not None, result.output
    return found.group(1)


def test_an_unlock_through_the_cli_needs_a_second_signed_in_administrator(
    run: Run, admins: Admins, store: VerifierStore
) -> None:
    lock(store, datetime.now(UTC) - timedelta(seconds=6))
    asked = _ask(
        run,
        "unlock",
        "--reason",
        "Locked out on a trip; identity checked by video call.",
        "--ticket",
        "SEC-42",
        "--tier",
        "business",
        who=admins.as_("alice"),
    )
    request_id = _request_id(asked)

    own = _call(run, "approve", request_id, who=admins.as_("alice", step=1))
    assert own.exit_code == 1 and "self_approval" in own.output
    auditor = _call(run, "approve", request_id, who=admins.as_("carol"))
    assert auditor.exit_code == 1 and "not_admin" in auditor.output
    impostor = _call(run, "approve", request_id, who=admins.as_("bob", password="guessed it!!"))
    assert impostor.exit_code == 1 and "sign_in_refused" in impostor.output
    assert store.lockout(sign_in_request(datetime.now(UTC))).locked

    done = _call(run, "approve", request_id, who=admins.as_("bob"))
    assert done.exit_code == 0 and "unlocked" in done.output, done.output
    assert not store.lockout(sign_in_request(datetime.now(UTC))).locked
    twice = _call(run, "approve", request_id, who=admins.as_("bob", step=1))
    assert twice.exit_code == 1 and "already_approved" in twice.output

    listed = run("override", "list")
    assert listed.exit_code == 0
    (row,) = [line for line in listed.output.splitlines() if request_id in line]
    assert "approved by bob" in row and "unlock" in row and "SEC-42" in row

    trusted = trusted_control_keys(load_settings())
    events = [e for e in staged(store) if e.type.startswith("admin.")]
    for event in events:
        check_producer(event, trusted)  # signed by this machine's control key
    assert [(e.type, getattr(e.data, "reason", None)) for e in events] == [
        ("admin.override.requested", None),
        ("admin.override.refused", "self_approval"),
        ("admin.override.refused", "not_admin"),
        ("admin.override.refused", "sign_in_refused"),
        ("admin.override.approved", None),
        ("admin.override.refused", "already_approved"),
    ]
    assert events[0].data.ticket == "SEC-42" and events[0].data.requested_by == "alice"  # type: ignore[union-attr]


def test_a_temporary_access_code_from_the_cli_lets_the_locked_person_in_once_over_http(
    run: Run, admins: Admins, store: VerifierStore
) -> None:
    lock(store, datetime.now(UTC) - timedelta(seconds=6))
    common = ("--reason", "Lost phone; identity checked at the desk.", "--ticket", "SEC-43")
    beyond = _ask(
        run, "temporary-access", "--tier", "admin", "--multi-use", *common, who=admins.as_("alice")
    )
    assert beyond.exit_code == 1 and "multi_use_not_allowed" in beyond.output
    asked = _ask(
        run,
        "temporary-access",
        "--hours",
        "2",
        "--tier",
        "business",
        *common,
        who=admins.as_("bob"),
    )
    request_id = _request_id(asked)
    granted = _call(run, "approve", request_id, who=admins.as_("alice", step=1))
    assert granted.exit_code == 0, granted.output
    found = re.search(r"temporary access code: ([A-Z2-9-]{19})", granted.output)
    assert found is not None, granted.output
    code = found.group(1)

    parts = open_parts(service_config(load_settings()))
    server = start_server(create_app(parts))
    try:
        acme = parts.clients.add(
            tenant=TENANT, audience="https://vpn", label=None, now=datetime.now(UTC)
        ).credential
        globex = parts.clients.add(
            tenant="globex", audience="https://crm", label=None, now=datetime.now(UTC)
        ).credential
        assert store.lockout(sign_in_request(datetime.now(UTC))).locked  # still locked
        verify = f"/v1/subjects/{SUBJECT}/temporary-access/verify"
        stolen = _post(server.port, verify, {"code": code}, globex)
        assert (stolen[0], stolen[1]["error"]) == (403, "other_subject")
        first = _post(server.port, verify, {"code": code, "tier": "business"}, acme)
        assert first[0] == 200, first
        assert first[1]["acr"] == ACR_TEMPORARY_ACCESS and first[1]["amr"] == []
        second = _post(server.port, verify, {"code": code}, acme)
        assert (second[0], second[1]["error"]) == (403, "used_code")
    finally:
        stop_server(server)
        close_parts(parts)

    events = [e for e in staged(store) if e.type.startswith(("admin.", "access."))]
    assert Counter((e.tenant, e.type) for e in events) == {
        (TENANT, "admin.override.refused"): 1,
        (TENANT, "admin.override.requested"): 1,
        (TENANT, "admin.override.approved"): 1,
        (TENANT, "access.temporary.granted"): 1,
        (TENANT, "access.temporary.used"): 1,
        (TENANT, "access.temporary.refused"): 1,  # the second use
        ("globex", "access.temporary.refused"): 1,  # the other tenant's try, on its own record
    }


def _post(port: int, path: str, body: Any, token: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_bad_options_fail_with_a_clear_error(run: Run, admins: Admins) -> None:
    wrong = run(
        "override",
        "request",
        TENANT,
        SUBJECT,
        "--action",
        "delete",
        "--reason",
        "r",
        "--ticket",
        "t",
        "--as",
        "alice",
    )
    assert wrong.exit_code == 1 and "--action must be unlock or temporary-access" in wrong.output
    unknown = _call(run, "approve", "no-such-request", who=admins.as_("bob"))
    assert unknown.exit_code == 1 and "no override request" in unknown.output

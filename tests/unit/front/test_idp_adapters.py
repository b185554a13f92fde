"""``factorstream idp add`` and ``idp status``: adapters' files, credentials never on the
command line nor echoed, stored private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factorstream.cli import app
from factorstream.idp_config import AdapterFiles
from factorstream.settings import Settings
from sources.cursors import CursorState

SECRET = "Sup3r-s3cret-value"
AUTH0 = ["idp", "add", "auth0", "acme", "--tenant", "acme", "--source",
         "https://acme.eu.auth0.com/", "--base-url", "https://acme.eu.auth0.com"]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _files(data_dir: Path) -> AdapterFiles:
    return AdapterFiles(Settings(data_dir=data_dir).idp_state_dir())


def test_add_reads_credentials_from_stdin_and_keeps_them_private(env: Path) -> None:
    credentials = {"client_id": "abc", "client_secret": SECRET, "log_stream_token": "Bearer t"}
    result = CliRunner().invoke(app, [*AUTH0, "--credentials-file", "-"],
                                input=json.dumps(credentials))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    files = _files(env)
    adapter = files.load("acme")
    assert (adapter.provider, adapter.tenant) == ("auth0", "acme")
    assert SECRET not in files.config_path("acme").read_text()
    assert files.credentials(adapter) == credentials
    assert stat.S_IMODE(files.credentials_path("acme").stat().st_mode) == 0o600
    again = CliRunner().invoke(app, [*AUTH0, "--credentials-file", "-"],
                               input=json.dumps(credentials))  # fmt: skip
    assert again.exit_code == 1 and "exists" in again.output + again.stderr


def test_add_reads_a_credentials_file(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "okta.json"
    path.write_text(json.dumps({"api_token": SECRET}))
    args = ["idp", "add", "okta", "acme-okta", "--tenant", "acme", "--source",
            "https://acme.okta.com", "--base-url", "https://acme.okta.com",
            "--credentials-file", str(path)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _files(env).names() == ["acme-okta"]


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        ('{"client_id": "abc"}', "credentials need"),
        (json.dumps({"client_id": "a", "client_secret": SECRET, "pasword": "x"}), "unknown"),
        (f"client_secret={SECRET}", "not a JSON object"),
        (json.dumps({"client_id": "a", "client_secret": 7}), "non-empty strings"),
    ],
)
def test_bad_credentials_are_refused_without_echoing_them(
    env: Path, credentials: str, says: str
) -> None:
    result = CliRunner().invoke(app, [*AUTH0, "--credentials-file", "-"], input=credentials)
    output = result.output + result.stderr
    assert result.exit_code == 1 and says in output
    assert SECRET not in output
    assert _files(env).names() == []


def test_keycloak_and_entra_need_their_realm_and_directory(env: Path) -> None:
    base = [
        "--tenant",
        "acme",
        "--source",
        "s",
        "--base-url",
        "https://x",
        "--credentials-file",
        "-",
    ]
    creds = json.dumps({"client_id": "a", "client_secret": "b"})
    keycloak = CliRunner().invoke(app, ["idp", "add", "keycloak", "kc", *base], input=creds)
    assert keycloak.exit_code == 1 and "--realm" in keycloak.stderr
    entra = CliRunner().invoke(app, ["idp", "add", "entra", "en", *base], input=creds)
    assert entra.exit_code == 1 and "--directory" in entra.stderr
    bad_name = CliRunner().invoke(app, ["idp", "add", "auth0", "../up", *base], input=creds)
    assert bad_name.exit_code == 1 and _files(env).names() == []


def test_status_shows_cursor_lag_last_error_and_unmapped(env: Path) -> None:
    empty = CliRunner().invoke(app, ["idp", "status"])
    assert "no adapters" in empty.output
    CliRunner().invoke(app, [*AUTH0, "--credentials-file", "-"],
                       input=json.dumps({"client_id": "a", "client_secret": "b"}))  # fmt: skip
    files = _files(env)
    files.cursors.save("acme", CursorState(
        position={"from": "9002"}, last_error="GET /api/v2/logs: 503", delivered=12,
        unmapped={"not_mfa": 3, "missing_subject": 1},
    ))  # fmt: skip
    rows = CliRunner().invoke(app, ["idp", "status", "--json"]).stdout.splitlines()
    row = json.loads(rows[0])
    assert row["name"] == "acme" and row["position"] == {"from": "9002"}
    assert row["lag_s"] is None and row["unmapped_total"] == 4
    assert row["last_error"] == "GET /api/v2/logs: 503"
    table = CliRunner().invoke(app, ["idp", "status"]).stdout
    assert "acme" in table and "never caught up" in table and "3 not_mfa" in table


def test_credentials_others_can_read_are_refused(env: Path) -> None:
    CliRunner().invoke(app, [*AUTH0, "--credentials-file", "-"],
                       input=json.dumps({"client_id": "a", "client_secret": "b"}))  # fmt: skip
    files = _files(env)
    files.credentials_path("acme").chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        files.credentials(files.load("acme"))
    result = CliRunner().invoke(app, ["idp", "poll", "acme"])
    assert result.exit_code == 1 and "chmod 600" in result.stderr


def test_poll_of_an_adapter_that_does_not_exist(env: Path) -> None:
    result = CliRunner().invoke(app, ["idp", "poll", "nobody"])
    assert result.exit_code == 1 and "no adapter nobody" in result.stderr


@pytest.mark.parametrize("url", ["http://acme.okta.com", "ftp://x", "acme.okta.com", "https://"])
def test_an_api_url_must_be_https_but_for_this_machine(env: Path, url: str) -> None:
    args = ["idp", "add", "okta", "o", "--tenant", "acme", "--source", "s",
            "--base-url", url, "--credentials-file", "-"]  # fmt: skip
    result = CliRunner().invoke(app, args, input=json.dumps({"api_token": "t"}))
    assert result.exit_code == 1 and "https://" in result.stderr
    args[args.index(url)] = "http://127.0.0.1:8080"
    assert CliRunner().invoke(app, args, input=json.dumps({"api_token": "t"})).exit_code == 0

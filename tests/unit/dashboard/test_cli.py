"""``factorstream users``: add prints the TOTP secret once; list shows state; bad input fails."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
import typer
from typer.testing import CliRunner

from factorstream.cli import dashboard as cli
from factorstream.cli.context import load_into


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    root = typer.Typer()
    root.callback()(load_into)
    root.add_typer(cli.app, name="users")
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(root, ["users", *args], input=stdin)

    return invoke


def test_add_prints_the_secret_and_list_shows_the_user(run) -> None:  # type: ignore[no-untyped-def]
    added = run("add", "bob", "--role", "soc", "--password-stdin", stdin="a long passphrase\n")
    assert added.exit_code == 0, added.output
    uri = re.search(r"otpauth://totp/\S+", added.output)
    secret = re.search(r"secret \(base32\): ([A-Z2-7]+)", added.output)
    assert uri and secret
    assert pyotp.parse_uri(uri.group(0)).secret == secret.group(1)
    assert "█" in added.output or "▀" in added.output  # the terminal QR code
    listed = run("list")
    assert listed.exit_code == 0 and "bob" in listed.output and "pending" in listed.output


def test_refusals_exit_non_zero(run) -> None:  # type: ignore[no-untyped-def]
    assert run("add", "eve", "--role", "root", "--password-stdin", stdin="x" * 20).exit_code == 1
    short = run("add", "eve", "--role", "auditor", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "12 characters" in short.output
    run("add", "eve", "--role", "auditor", "--password-stdin", stdin="long enough pass\n")
    again = run("add", "eve", "--role", "auditor", "--password-stdin", stdin="long enough pass\n")
    assert again.exit_code == 1 and "exists" in again.output
    assert run("disable", "nobody").exit_code == 1
    assert run("disable", "eve").exit_code == 0

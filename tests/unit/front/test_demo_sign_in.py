"""The demo's sign-in: written to a private file it names, and printed whole as plain
lines when its output is a log or a pipe rather than a terminal."""

from __future__ import annotations

import io
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import typer
from rich.console import Console

from factorstream.cli import demo as demo_command
from factorstream.demo import (
    Child,
    DemoAuditor,
    sign_in_file,
    sign_in_lines,
    write_sign_in,
)
from factorstream.settings import Settings

URL = "http://127.0.0.1:8050/"
AUDITOR = DemoAuditor(name="demo-auditor", password="pw-Zk3_9aQ", secret=pyotp.random_base32())
AT = datetime(2026, 12, 7, 22, 0, 5, tzinfo=UTC)


def test_the_lines_say_where_and_how_to_sign_in() -> None:
    lines = sign_in_lines(URL, AUDITOR, now=AT)
    text = "\n".join(lines)
    assert f"dashboard: {URL}" in lines
    assert "user: demo-auditor (auditor)" in lines
    assert "password: pw-Zk3_9aQ" in lines
    assert f"TOTP code: {pyotp.TOTP(AUDITOR.secret).at(AT)} at 22:00:05 UTC" in text
    assert AUDITOR.secret in text
    assert "factorstream demo --code" in text


def test_the_file_is_the_one_named_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    stale = sign_in_file(settings)
    stale.parent.mkdir(parents=True)
    stale.write_text("an older demo's password\n")
    stale.chmod(0o644)

    path = write_sign_in(settings, URL, AUDITOR, now=AT)

    assert path == tmp_path / "demo" / "sign-in.txt"
    assert path.read_text().splitlines() == sign_in_lines(URL, AUDITOR, now=AT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # also when it existed, readable by all


def test_without_a_terminal_the_sign_in_is_printed_whole_and_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(demo_command, "console", Console(file=out, width=40))
    assert not demo_command.console.is_terminal
    settings = Settings(data_dir=tmp_path)
    ended = subprocess.Popen(["true"])  # a real child that has stopped: the demo's end
    ended.wait()
    child = Child(name="dashboard", process=ended, log=tmp_path / "dash.log")
    (tmp_path / "dash.log").write_text("")

    with pytest.raises(typer.Exit):  # the child stopped: the watch ends the demo
        demo_command._announce(settings, URL, AUDITOR, children=(child,))

    printed = out.getvalue().splitlines()
    saved = sign_in_file(settings)
    assert printed[:3] == [
        f"dashboard: {URL}",
        "user: demo-auditor (auditor)",
        "password: pw-Zk3_9aQ",
    ]
    assert any(line.startswith("TOTP secret: ") and AUDITOR.secret in line for line in printed)
    assert f"(also in {saved})" in printed  # wider than 40 columns, not cut
    assert saved.read_text().splitlines()[0] == f"dashboard: {URL}"

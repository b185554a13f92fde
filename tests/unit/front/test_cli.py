"""The ``factorstream`` command: every command is reachable, and each loads only its own
module (``factorstream sql`` starts without Faust, Dash or the ledger)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from analytics.lake import LakeWriter
from factorstream.cli import COMMANDS, app
from tests.factories import PAYLOADS, sample_event

PROBE = """
import sys
from typer.testing import CliRunner
from factorstream.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = ("faust", "dash", "audit.ledger", "streams", "verifiers", "sqlalchemy", "aiokafka")
light = {"verifiers", "verifiers.kafka_connection"}  # the settings' connection value: stdlib only
loaded = sorted(
    {name.split(".")[0] for name in sys.modules if name.startswith(heavy) and name not in light}
)
print(result.exit_code, " ".join(loaded), "|", result.stdout.strip().replace("\\n", " "))
"""


def test_sql_loads_neither_the_worker_nor_the_dashboard(tmp_path: Path) -> None:
    LakeWriter(tmp_path / "lake").write_events([sample_event(name) for name in PAYLOADS])
    env = {"FACTORSTREAM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "sql", "SELECT count(*) AS n FROM events", "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    code, rest = done.stdout.strip().split(" ", 1)
    loaded, output = rest.split("|")
    assert code == "0", done.stdout + done.stderr
    assert json.loads(output) == [{"n": len(PAYLOADS)}]
    assert loaded.split() == [], f"factorstream sql imported {loaded}"


def test_every_command_is_listed_and_answers_help() -> None:
    group = typer.main.get_command(app)
    assert list(group.list_commands(None)) == list(COMMANDS)  # type: ignore[attr-defined]
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in listing.stdout
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.stdout)
        assert "Usage: factorstream " + name in " ".join(result.stdout.split())
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def _open_to_others(root: Path) -> list[str]:
    return [
        f"{path} {oct(path.stat().st_mode & 0o777)}"
        for path in [root, *root.rglob("*")]
        if not path.is_symlink() and path.stat().st_mode & 0o077
    ]


def test_what_a_command_writes_is_private_to_its_user(tmp_path: Path) -> None:
    """Another local user reads nothing: not the dashboard's users, sessions and TOTP
    secrets, not the keys (``users add`` makes all of them in a fresh data dir)."""
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "users", "add", "ann", "--role", "auditor"]
        + ["--password-stdin"],
        input="a long passphrase\n",
        capture_output=True,
        text=True,
        env={"FACTORSTREAM_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert list(data.rglob("*.db")), sorted(data.rglob("*"))
    assert _open_to_others(data) == []


def test_a_data_dir_open_to_others_is_closed_with_a_notice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "users", "list"],
        capture_output=True,
        text=True,
        env={"FACTORSTREAM_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    notice = " ".join(done.stderr.split())  # the console wraps long lines
    assert "was open to other users (drwxr-xr-x); it is 0700 now" in notice


def test_database_urls_are_printed_without_their_password() -> None:
    from factorstream.cli.context import redacted

    shown = redacted("postgresql+psycopg://ledger:s3cr%40t-pw@db.internal:5432/factorstream")
    assert "s3cr" not in shown and "***" in shown and "db.internal" in shown
    assert redacted("sqlite:////var/lib/factorstream/outbox.db").endswith("outbox.db")
    assert "pw" not in redacted("::not a url:pw@")


def test_a_worker_given_a_junk_trusted_control_key_says_so_and_exits(tmp_path: Path) -> None:
    """A stranger's file named as a trusted control key: a one-line error naming the
    setting and the file, before any broker is contacted, and no traceback."""
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    env = {
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FACTORSTREAM_CONTROL__TRUSTED_KEY_FILES": json.dumps([str(junk)]),
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "300",
    }
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "worker"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"control.trusted_key_files: {junk}: not a PEM public key" in said
    assert "Traceback" not in said


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "FACTORSTREAM_STREAM__SESSION_TIMEOUT_S",
            "1",
            "FACTORSTREAM_STREAM__SESSION_TIMEOUT_S='1': Input should be greater than or equal",
        ),
        ("FACTORSTREAM_STREAM__WEB_PORT", "http", "FACTORSTREAM_STREAM__WEB_PORT='http'"),
        ("FACTORSTREAM_STREAM__ROLES", "folds", "lists are JSON"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    env = {
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        variable: value,
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "300",
    }
    done = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "kafka", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "error: bad setting: " in out and said in out
    assert "Traceback" not in out

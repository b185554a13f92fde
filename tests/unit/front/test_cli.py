"""The ``factorstream`` command: every command is reachable, and each loads only its own
module (``factorstream sql`` starts without Faust, Dash or the ledger)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
loaded = sorted({name.split(".")[0] for name in sys.modules if name.startswith(heavy)})
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

"""``factorstream simulate`` to a JSONL file: the digest it prints is the file's SHA-256,
and a fixed ``--until`` with one seed replays the same file."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from factorstream.cli.context import load_into
from factorstream.cli.simulate import simulate
from schemas import decode

UNTIL = "2026-11-20T00:00:00"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    app = typer.Typer()
    app.callback()(load_into)
    app.command()(simulate)
    return app


def _run(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["simulate", "--users", "6", "--days", "1", *args])
    return result.exit_code, result.output


def _digest(output: str) -> str:
    found = re.search(r"sha256:\s*([0-9a-f]{64})", output)
    assert found, output
    return found.group(1)


@pytest.mark.parametrize("mode", [[], ["--fast"]], ids=["verifiers", "fast"])
def test_jsonl_output_replays_and_matches_the_printed_digest(
    cli: typer.Typer, tmp_path: Path, mode: list[str]
) -> None:
    outputs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.jsonl"
        code, output = _run(
            cli, "--jsonl", str(path), "--until", UNTIL, "--scenario", "push_bombing", *mode
        )
        assert code == 0, output
        content = path.read_bytes()
        assert _digest(output) == hashlib.sha256(content).hexdigest()
        events = [decode(line) for line in content.splitlines()]
        assert any(e.type == "mfa.push.rejected" for e in events)
        outputs.append(content)
    assert outputs[0] == outputs[1]


def test_unknown_scenarios_are_refused(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = _run(cli, "--jsonl", str(tmp_path / "x.jsonl"), "--scenario", "nope")
    assert code == 1 and "nope" in output
    code, output = _run(cli, "--jsonl", str(tmp_path / "x.jsonl"), "--scenarios", "some")
    assert code == 1 and "all or none" in output


SCRIPT = """
import sys, typer
from factorstream.cli.context import load_into
from factorstream.cli.simulate import simulate
app = typer.Typer()
app.callback()(load_into)
app.command()(simulate)
app(sys.argv[1:])
"""


def test_processes_with_different_hash_seeds_replay_the_same_stream(tmp_path: Path) -> None:
    """Nothing depends on the order of a set or dict of strings (``PYTHONHASHSEED``)."""
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env["FACTORSTREAM_DATA_DIR"] = str(tmp_path / hash_seed)
        args = ["simulate", "--users", "4", "--days", "1", "--until", UNTIL, "--seed", "2"]
        args += ["--jsonl", str(tmp_path / f"{hash_seed}.jsonl")]
        done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()
        digests.add(_digest(done.stdout.decode()))
    assert len(digests) == 1

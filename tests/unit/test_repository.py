"""Repository rules: the quickstart, CI, generated docs and static checks agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from factorstream import docs
from factorstream.cli import app

ROOT = Path(__file__).resolve().parents[2]
TEST_COMMAND = "python3 -m factorstream.quickstart test"


def _quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ", 2)[1]
    assert first_section.startswith("Quickstart"), "the README must begin with the quickstart"
    match = re.search(r"```sh\n(.*?)```", first_section, re.DOTALL)
    assert match, "the quickstart has a shell block"
    return match.group(1)


def test_readme_quickstart_has_the_test_command_and_ci_runs_exactly_it() -> None:
    commands = [line.split("#")[0].strip() for line in _quickstart_block().splitlines()]
    assert TEST_COMMAND in commands
    ci_script = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_script[-1] == TEST_COMMAND


def test_readme_settings_and_cli_reference_are_current() -> None:
    readme = docs.README.read_text()
    assert docs.render(readme, typer.main.get_command(app)) == readme, "run `factorstream docs`"


def test_every_setting_and_command_is_documented() -> None:
    readme = docs.README.read_text()
    for row in docs.settings_rows():
        assert row in readme
    for line in docs.cli_reference(typer.main.get_command(app)).splitlines():
        assert line in readme


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff", "ruff-format", "mypy-strict"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr

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


def test_the_api_reference_is_what_the_service_serves() -> None:
    for path, text in docs.api_reference().items():
        assert path.exists() and path.read_text() == text, f"{path.name}: run `factorstream docs`"
    reference = docs.API_REFERENCE.read_text()
    assert "### `POST /v1/assess`" in reference
    assert "### `POST /v1/subjects/{subject}/totp/verify`" in reference


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


def _requirements(text: str) -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` of a pip-compile lock file."""
    found: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.-]+)==([^ \\\n]+)", block)
        if head:
            name = re.sub(r"[-_.]+", "-", head.group(1)).lower()
            found[name] = (head.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return found


def test_the_lock_file_pins_what_pyproject_pins_each_with_hashes() -> None:
    """The quickstart installs from requirements.lock with --require-hashes: a pin changed
    in pyproject.toml without the lock regenerated would install the old version."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock_text = (ROOT / "requirements.lock").read_text()
    locked = _requirements(lock_text)
    groups = project["optional-dependencies"]
    pinned = [*project["dependencies"], *(pin for group in groups.values() for pin in group)]
    pinned = [pin for pin in pinned if not pin.startswith("factorstream[")]  # `all`
    for requirement in pinned:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", requirement)
        assert match, f"{requirement}: pyproject.toml pins every dependency with =="
        name, version = match.groups()
        key = re.sub(r"[-_.]+", "-", name).lower()
        assert key in locked, f"{name} is not in requirements.lock: run pip-compile (README)"
        assert locked[key][0] == version, (
            f"{name}: pyproject pins {version}, the lock {locked[key][0]}"
        )
    assert len(locked) > len(pinned)  # the whole tree, not only the direct pins
    assert all(hashes for _, hashes in locked.values()), "every requirement needs its hashes"
    assert "--find-links" not in lock_text and "--index-url" not in lock_text  # no local paths

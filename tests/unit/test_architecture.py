"""The layer rules (pyproject.toml's import-linter contracts) hold, and a break is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
]


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [*LINT, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's packages and contracts, copied (a violation is written to the copy)."""
    root = tmp_path_factory.mktemp("layers")
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_projects_imports_keep_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("streams/folds/window.py", "import factorstream.settings", "Layers"),
        ("verifiers/crypto.py", "import streams.folds.window", "Layers"),
        ("analytics/tables.py", "import audit.ledger", "Layers"),
        ("schemas/fields.py", "import verifiers.totp", "Layers"),
        ("verifiers/totp.py", "import duckdb", "The core"),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(
    copy: Path, module: str, line: str, contract: str
) -> None:
    path = copy / module
    original = path.read_text()
    path.write_text(f"{original}\n{line}  # a deliberate violation\n")
    try:
        result = lint(copy)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(contract), result.stdout
    assert line.split()[-1] in result.stdout  # the offending import is named

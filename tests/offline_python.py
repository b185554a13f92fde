"""pytest plugin: a Python that has ``cryptography`` and nothing of ours, for the tests that
check an evidence pack the way an auditor does (``bare_python``), and running a pack's own
``verify.py`` with it.

The venv is made once per test session: a fresh ``venv`` into which only ``cryptography``
is installed, at the version ``requirements.lock`` pins, from the local wheel cache (or
the package index when the cache lacks it). The pack's script runs with ``-I`` (no user
site, no ``PYTHONPATH``), from a directory outside the checkout, in an environment that
holds only ``PATH``: nothing of factorstream can be imported there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def pinned_cryptography() -> str:
    """``cryptography==X`` as ``requirements.lock`` pins it."""
    found = re.search(r"^cryptography==(\S+)", LOCK.read_text(), re.MULTILINE)
    if found is None:
        raise AssertionError(f"{LOCK} pins no cryptography")
    return f"cryptography=={found[1]}"


def cryptography_only_python(root: Path) -> Path:
    """A fresh venv under ``root`` with only the pinned ``cryptography``; its python."""
    wheels, venv = root / "wheels", root / "venv"
    pinned = pinned_cryptography()
    download = [sys.executable, "-m", "pip", "download", "-q", pinned, "-d", str(wheels)]
    subprocess.run(download, check=True)  # noqa: S603 - pip, with our own arguments
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
               str(wheels), pinned]  # fmt: skip
    subprocess.run(install, check=True)  # noqa: S603
    return python


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's cryptography-only Python (see the module docstring)."""
    return cryptography_only_python(tmp_path_factory.mktemp("bare-python"))


def run_verify(python: Path, pack: Path) -> subprocess.CompletedProcess[str]:
    """The pack's verify.py, run from the pack's parent directory with a clean environment."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(  # noqa: S603 - the pack's own script, as an auditor runs it
        [str(python), "-I", str(pack / "verify.py"), str(pack)],
        cwd=pack.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def refusal(python: Path, pack: Path) -> str:
    """What the pack's verify.py says when it refuses ``pack`` (it must refuse it)."""
    result = run_verify(python, pack)
    assert result.returncode == 1, result.stdout
    return result.stderr


def rewrite_manifest(pack: Path) -> None:
    """What a forger would do next: make the manifest agree with the edited files."""
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["files"] = {
        name: hashlib.sha256((pack / name).read_bytes()).hexdigest() for name in manifest["files"]
    }
    (pack / "manifest.json").write_text(json.dumps(manifest))

"""The README quickstart: set up everything on a fresh machine, then run one job.

    python3 -m factorstream.quickstart test            # the whole test suite
    python3 -m factorstream.quickstart kafka up        # any `factorstream` command

Standard library only: it runs before any dependency is installed. It creates
``.venv`` next to ``pyproject.toml``, installs every dependency from
``requirements.lock`` (each pinned with its hashes: pip refuses a file whose hash differs;
the lock holds every optional group, ``dev`` and ``service`` included)
and the project itself without dependencies, again only when either file changed, then
hands over to the virtualenv.
"""

from __future__ import annotations

import hashlib
import os
import subprocess  # noqa: S404 - this module exists to run pip and pytest
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".factorstream-installed"
LOCK = ROOT / "requirements.lock"
"""The whole dependency tree with hashes (``pip-compile --generate-hashes``; see README)."""
PYTEST_NO_TESTS = 5


def _bin(name: str) -> Path:
    return VENV / "bin" / name


def ensure_environment() -> None:
    """Create the virtualenv and install the project, unless already up to date."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and _bin("factorstream").exists():
        return
    if not _bin("python").exists():
        print(f"quickstart: creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("quickstart: installing factorstream and its pinned dependencies", flush=True)
    pip = [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True)  # noqa: S603
    # the build backend (setuptools) comes from the lock too: no unhashed download
    editable = [*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)]
    subprocess.run(editable, check=True)  # noqa: S603
    STAMP.write_text(wanted)


def run_tests(args: list[str]) -> int:
    """Run pytest; "no tests collected" is a failure, never a silent pass."""
    code = subprocess.call([str(_bin("python")), "-m", "pytest", *args], cwd=ROOT)  # noqa: S603
    if code == PYTEST_NO_TESTS:
        print("quickstart: pytest collected no tests; that is a failure", file=sys.stderr)
        return 1
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__)
        return 2
    ensure_environment()
    if args[0] == "test":
        return run_tests(args[1:])
    cli = str(_bin("factorstream"))
    os.execv(cli, [cli, *args])  # noqa: S606 - replaces this process with the CLI


if __name__ == "__main__":
    sys.exit(main())

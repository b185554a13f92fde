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
import signal
import subprocess  # noqa: S404 - this module exists to run pip and pytest
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".factorstream-installed"
LOCK = ROOT / "requirements.lock"
"""The whole dependency tree with hashes (``pip-compile --generate-hashes``; docs/security.md)."""
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


LANES = (
    ("integration", ["tests/integration", "--ignore=tests/integration/alerts"]),
    (
        "unit, wiring, end-to-end and alerts",
        ["tests/unit", "tests/wiring", "tests/e2e", "tests/integration/alerts"],
    ),
)
"""The whole suite runs as two pytest processes side by side, one per core. The integration
tests share one lane and run one at a time: they start brokers and workers and wait on
timeouts that a second such test beside them would stretch. The other tests are the
second lane, its output shown when it ends; the alerts' integration tests run there (their
waits are their own receivers', not the broker's), so the lanes take about as long."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _pytest(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    # each in a session of its own: a signal reaches it once, from here (see run_tests)
    command = [str(_bin("python")), "-m", "pytest", *args]
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True, **kwargs)  # noqa: S603


def run_tests(args: list[str]) -> int:
    """Run pytest (``args``; none: the whole suite, in two lanes); "no tests collected" is
    a failure, never a silent pass.

    SIGINT, SIGTERM and SIGHUP are passed on to each pytest process once; the tests' own
    handler (``tests/conftest.py``) turns them into an interruption, so the session's
    brokers, databases and workers are stopped before it exits.
    """
    with tempfile.TemporaryDirectory(prefix="factorstream-tests-") as tmp:
        side_log = Path(tmp) / "lane.log"
        running: list[subprocess.Popen[bytes]] = []

        def pass_on(signum: int, _frame: object) -> None:
            for process in running:
                if process.poll() is None:
                    process.send_signal(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, pass_on)
        if args:
            running.append(_pytest(args))
        else:
            with side_log.open("wb") as out:
                running.append(_pytest(LANES[1][1], stdout=out, stderr=subprocess.STDOUT))
            running.append(_pytest(LANES[0][1]))
        codes = [process.wait() for process in reversed(running)]
        if not args:
            name = LANES[1][0]
            print(f"\nquickstart: the {name} tests, run beside the ones above:", flush=True)
            sys.stdout.write(side_log.read_text(errors="replace"))
            sys.stdout.flush()
    if PYTEST_NO_TESTS in codes:
        print("quickstart: pytest collected no tests; that is a failure", file=sys.stderr)
        return 1
    return next((code for code in codes if code != 0), 0)


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

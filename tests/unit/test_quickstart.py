"""The quickstart's test command: every test directory in a lane, no silent passes, and a
stop signal that leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from factorstream import quickstart

ROOT = quickstart.ROOT


def _lane_files(args: list[str]) -> set[Path]:
    ignored = [ROOT / a.removeprefix("--ignore=") for a in args if a.startswith("--ignore=")]
    paths = [ROOT / a for a in args if not a.startswith("-")]
    found = {f for path in paths for f in path.rglob("test_*.py")}
    return {f for f in found if not any(f.is_relative_to(i) for i in ignored)}


def test_the_two_lanes_hold_every_test_file_once() -> None:
    lanes = [_lane_files(args) for _, args in quickstart.LANES]
    assert lanes[0] and lanes[1] and not lanes[0] & lanes[1]
    assert lanes[0] | lanes[1] == set((ROOT / "tests").rglob("test_*.py"))


def test_a_run_that_collects_no_tests_fails(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("# no tests here\n")
    assert quickstart.run_tests(["-q", "-p", "no:cacheprovider", str(tmp_path)]) == 1


def test_a_failing_test_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text("def test_no():\n    assert False\n")
    assert quickstart.run_tests(["-q", "-p", "no:cacheprovider", str(tmp_path)]) == 1


FIXTURE = """
import subprocess, pytest
from tests.conftest import pytest_configure  # the suite's stop handler

@pytest.fixture(scope="session")
def server():
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    open({pids!r}, "w").write(str(process.pid))
    yield process
    process.terminate()
    process.wait()
"""
TEST = """
import time

def test_waits(server):
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def test_sigterm_stops_the_tests_and_what_their_fixtures_started(tmp_path: Path) -> None:
    """``timeout`` (or a CI runner) sends SIGTERM: the session's fixtures are torn down
    (here a stand-in server in a session of its own, as the brokers are) and the command
    ends, instead of leaving them running."""
    pids = tmp_path / "server.pid"
    (tmp_path / "conftest.py").write_text(FIXTURE.format(pids=str(pids)))
    (tmp_path / "test_slow.py").write_text(TEST)
    command = [sys.executable, "-m", "factorstream.quickstart", "test", "-q", str(tmp_path)]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        server = int(pids.read_text())
        assert _alive(server)
        time.sleep(0.5)  # the test is sleeping now
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode != 0, out.decode()
    assert b"stopped by SIGTERM" in out
    assert not _alive(server), "the fixture's server outlived the run"

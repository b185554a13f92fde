"""Test tiers and the CI rule: with CI=true nothing real may be skipped."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import pytest

from tests.support import IN_CI

pytest_plugins = ["tests.kafka_broker", "tests.postgres", "tests.offline_python"]

TIERS = ("unit", "wiring", "integration", "e2e")


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pytest_configure() -> None:
    """SIGTERM and SIGHUP (``timeout``, a CI runner stopping the job) interrupt the run as
    Ctrl-C does: pytest then tears the session down, so no broker, database server or
    worker it started outlives it."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)


def pytest_runtest_setup() -> None:
    """Again before each test: one that ran a command in this process (its own handlers,
    put back to the default when its loop closed) must not leave the rest unprotected."""
    pytest_configure()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries the marker of the tier directory it lives in."""
    for item in items:
        parts = Path(str(item.path)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skip is a failure: a test whose component is missing must not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"

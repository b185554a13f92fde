"""Helpers shared by the test tiers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(component: str, why: str) -> NoReturn:
    """A real component is unavailable: skip locally, fail in CI (nothing real is skipped)."""
    message = f"{component} unavailable: {why}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def oathtool_code(
    secret: str, *, algorithm: str, digits: int, at: datetime, period: int = 30
) -> str:
    """The TOTP code GNU oathtool computes for a base32 ``secret`` at ``at`` (an
    implementation independent of ours and of pyotp)."""
    oathtool = shutil.which("oathtool")
    if oathtool is None:
        missing("oathtool", "not on PATH (apt-get install oathtool)")
    return subprocess.run(  # noqa: S603 - oathtool from PATH
        [
            oathtool,
            f"--totp={algorithm.lower()}",
            f"--digits={digits}",
            f"--time-step-size={period}s",
            "--base32",
            secret,
            "--now",
            f"@{int(at.timestamp())}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def delivered() -> asyncio.Future[None]:
    """What a stand-in for ``Topic.send`` returns: a delivery already acknowledged."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def wait_for(check: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    """Call ``check`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)
    return value


async def until(check: Callable[[], object], *, timeout: float = 10, what: str = "") -> None:
    """:func:`wait_for` inside an event loop: other tasks run while it waits."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)

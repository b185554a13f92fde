"""Helpers shared by the test tiers."""

from __future__ import annotations

import asyncio
import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(component: str, why: str) -> NoReturn:
    """A real component is unavailable: skip locally, fail in CI (nothing real is skipped)."""
    message = f"{component} unavailable: {why}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def delivered() -> asyncio.Future[None]:
    """What a stand-in for ``Topic.send`` returns: a delivery already acknowledged."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future

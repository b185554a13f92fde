"""Scraping a process's ``/metrics`` and checking it with ``promtool`` (Debian's
``prometheus`` package): skipped locally when promtool is missing, a failure in CI."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import missing


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing("promtool", "not on PATH (apt-get install prometheus)")
    return path


def check_metrics(text: str) -> None:
    """``promtool check metrics`` passes on ``text`` (lint problems fail it)."""
    done = subprocess.run(
        [promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    problems = (done.stdout + done.stderr).decode()
    assert done.returncode == 0 and not problems.strip(), problems


def check_rules(path: Path) -> str:
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, timeout=60
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    return output


def scrape(url: str, *, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain"), response.headers
        body: bytes = response.read()
    return body.decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample: (name, labels) → value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and wanted <= ls)


def has(text: str, name: str) -> bool:
    return any(n == name for n, _ in samples(text))

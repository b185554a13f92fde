"""Shared by the ledger tests: a ledger on a URL, sample events, the CLI on settings."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from audit.ledger import Ledger, open_ledger
from factorstream.cli import audit as audit_cli
from factorstream.cli.context import load_into
from schemas import Event
from tests.factories import PAYLOADS, T0, sample_event

TYPES = list(PAYLOADS)
CLIENT_IP = "203.0.113.7"
DEVICE_ID = "dev-1"


def events(count: int, *, subjects: int = 3, start: int = 0) -> list[Event]:
    """``count`` events cycling through every type and ``subjects`` subjects, 1 s apart."""
    kinds = itertools.islice(itertools.cycle(TYPES), start, start + count)
    return [
        sample_event(kind, subject=f"u-{(start + i) % subjects}", now=T0 + timedelta(seconds=i))
        for i, kind in enumerate(kinds, start=0)
    ]


def settings_env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    return {
        "FACTORSTREAM_DATA_DIR": str(data_dir),
        "FACTORSTREAM_LEDGER__URL": url,
        **extra,
    }


def open_test_ledger(
    data_dir: Path, url: str, *, every: int = 10, interval_s: float = 3600
) -> Ledger:
    """The ledger the CLI opens for the same data dir and URL."""
    return open_ledger(
        url=url,
        signing_key_file=data_dir / "keys" / "ledger-signing.pem",
        master_key_file=data_dir / "keys" / "ledger-master.key",
        checkpoint_every=every,
        checkpoint_interval_s=interval_s,
    )


def cli() -> typer.Typer:
    """``factorstream`` with only the audit commands (what the lead registers)."""
    root = typer.Typer()
    root.callback()(load_into)
    root.add_typer(audit_cli.app, name="audit")
    return root


def run_cli(env: Mapping[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli(), ["audit", *args], env=dict(env), input=input)


def flat(result: Result) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())

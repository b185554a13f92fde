"""Shared CLI plumbing: settings on the typer context, one rich console."""

from __future__ import annotations

import os

import typer
from rich.console import Console

from factorstream.settings import Settings, load_settings, unknown_environment

console = Console()
errors = Console(stderr=True)


def load_into(ctx: typer.Context) -> None:
    """Read settings from the environment once, for every subcommand."""
    for name in unknown_environment(os.environ):
        errors.print(f"[yellow]warning:[/] {name} is not a factorstream setting (a typo?)")
    ctx.obj = load_settings()


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)  # noqa: S101 - set by load_into
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)

"""Shared CLI plumbing: settings on the typer context, one rich console, private files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from factorstream.settings import ENV_PREFIX, Settings, load_settings, unknown_environment

console = Console()
errors = Console(stderr=True)


def progress_bar(*, disable: bool = False) -> Progress:
    """The progress display of long commands: what, a bar, done/total, time elapsed; it
    vanishes when done (``disable``: none, e.g. when the output is JSON)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )


def load_into(ctx: typer.Context) -> None:
    """Read settings from the environment once, for every subcommand."""
    for name in unknown_environment(os.environ):
        errors.print(f"[yellow]warning:[/] {name} is not a factorstream setting (a typo?)")
    try:
        ctx.obj = settings = load_settings()
    except ValidationError as error:
        raise fail(f"bad setting: {settings_problems(error)}") from None
    except SettingsError as error:  # a list or object that is not JSON
        raise fail(f"bad setting: {error} ({error.__cause__}); lists are JSON") from None
    keep_private(settings.data_dir)


def settings_problems(error: ValidationError) -> str:
    """Each invalid setting as its environment variable, the value given and what is wrong
    (``FACTORSTREAM_STREAM__SESSION_TIMEOUT_S='1': Input should be greater than or equal
    to 6``), in one line."""
    problems = []
    for problem in error.errors():
        name = ENV_PREFIX + "__".join(str(part).upper() for part in problem["loc"])
        problems.append(f"{name}={problem.get('input')!r}: {problem['msg']}")
    return "; ".join(problems)


PRIVATE_UMASK = 0o077
"""What every file a ``factorstream`` process makes is denied to other local users (set by
:func:`factorstream.cli.main`, inherited by the broker, workers and servers it starts): the
data directory holds the ledger's master key, the dashboard's users and sessions, the
verifiers' secrets and every event's personal data."""


def keep_private(data_dir: Path) -> None:
    """An existing data directory that others may read or enter is made ``0700`` (with a
    notice: what was in it may have been read). One that does not exist yet is made by
    whichever command needs it, under :data:`PRIVATE_UMASK`."""
    try:
        mode = data_dir.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & 0o077:
        data_dir.chmod(0o700)
        errors.print(
            f"[yellow]notice:[/] {data_dir} was open to other users "
            f"({stat.filemode(mode)}); it is 0700 now"
        )


def redacted(url: str) -> str:
    """A database URL fit to print: its password replaced by ``***``."""
    from sqlalchemy.engine import make_url  # here: most commands never load SQLAlchemy

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL we can parse: print none of it
        return "(database URL not shown)"


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)  # noqa: S101 - set by load_into
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)

"""The ``factorstream`` command. Settings are read here, once, and passed down.

Each command's module is imported when the command runs (or help lists it), not before:
``factorstream sql`` loads DuckDB, not Faust, Dash and the ledger as well.
"""

from __future__ import annotations

import importlib
import os
import signal
from collections.abc import Mapping
from typing import Any, Final

import typer
from typer.core import TyperGroup

from factorstream.cli.context import PRIVATE_UMASK, load_into
from schemas import extras

COMMANDS: Final[Mapping[str, str]] = {
    "schemas": "factorstream.cli.schemas:app",
    "kafka": "factorstream.cli.kafka:app",
    "bench": "factorstream.cli.bench:app",
    "lockout": "factorstream.cli.lockout:app",
    "audit": "factorstream.cli.audit:app",
    "evidence": "factorstream.cli.evidence:evidence",
    "users": "factorstream.cli.dashboard:app",
    "override": "factorstream.cli.override:app",
    "lake": "factorstream.cli.sql:app",
    "demo": "factorstream.cli.demo:demo",
    "relay": "factorstream.cli.relay:relay",
    "retention": "factorstream.cli.retention:app",
    "replay": "factorstream.cli.replay:replay",
    "idp": "factorstream.cli.idp:app",
    "ingest": "factorstream.cli.ingest:app",
    "docs": "factorstream.cli.docs:docs",
    "worker": "factorstream.cli.worker:worker",
    "sink": "factorstream.cli.worker:sink",
    "alerts": "factorstream.cli.alerts:app",
    "dashboard": "factorstream.cli.dashboard:dashboard",
    "simulate": "factorstream.cli.simulate:simulate",
    "sql": "factorstream.cli.sql:sql",
    "serve": "factorstream.cli.service:serve",
    "clients": "factorstream.cli.service:clients",
    "devices": "factorstream.cli.devices:app",
    "enroll": "factorstream.cli.enroll:app",
    "service-keys": "factorstream.cli.service:keys",
    "sms-costs": "factorstream.cli.service:sms_costs",
}
"""Every command (or group of commands) by name: ``module:attribute``, a Typer app or a
function, in the order help lists them."""


def load_command(name: str) -> Any:
    """The click command ``name`` stands for, its module imported now; a command whose
    part's extra is not installed says so when run (and in help) instead."""
    module, attribute = COMMANDS[name].split(":")
    try:
        target = getattr(importlib.import_module(module), attribute)
    except ImportError as error:
        message = extras.explain(error, f"factorstream {name}")
        if message is None:
            raise
        return _missing_extra(name, message)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name=name)(target)
    return typer.main.get_command(single)


def _missing_extra(name: str, message: str) -> Any:
    def unavailable() -> None:
        typer.echo(message, err=True)
        raise typer.Exit(2)

    unavailable.__doc__ = f"(not installed) {message}"
    single = typer.Typer(add_completion=False)
    single.command(
        name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
    )(unavailable)
    return typer.main.get_command(single)


class LazyCommands(TyperGroup):
    """A command group that imports a command's module the first time it is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="factorstream",
    help="Event-sourced MFA audit and analytics pipeline.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=LazyCommands,
)
app.callback()(load_into)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main() -> None:
    """Run the CLI. SIGTERM and SIGHUP stop a command the way Ctrl-C does, so whatever it
    started (a private broker, a worker, a server) is stopped on the way out; commands that
    run a service of their own (the worker, the demo) install their own handlers. Files
    are made private to the user (:data:`~factorstream.cli.context.PRIVATE_UMASK`)."""
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _interrupt)
    os.umask(PRIVATE_UMASK)
    try:
        app()
    except ImportError as error:  # a command's part whose extra is not installed
        message = extras.explain(error, "this command")
        if message is None:
            raise
        typer.echo(message, err=True)
        raise SystemExit(2) from None

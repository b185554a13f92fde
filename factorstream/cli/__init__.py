"""The ``factorstream`` command. Settings are read here, once, and passed down."""

from __future__ import annotations

import typer

from factorstream.cli import audit, bench, dashboard, kafka, lockout, schemas
from factorstream.cli import sql as sql_cli
from factorstream.cli.context import load_into
from factorstream.cli.demo import demo
from factorstream.cli.docs import docs
from factorstream.cli.relay import relay
from factorstream.cli.replay import replay
from factorstream.cli.simulate import simulate
from factorstream.cli.worker import worker

app = typer.Typer(
    name="factorstream",
    help="Event-sourced MFA audit and analytics pipeline.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.callback()(load_into)
app.add_typer(schemas.app, name="schemas")
app.add_typer(kafka.app, name="kafka")
app.add_typer(bench.app, name="bench")
app.add_typer(lockout.app, name="lockout")
app.add_typer(audit.app, name="audit")
app.add_typer(dashboard.app, name="users")
app.add_typer(sql_cli.app, name="lake")
app.command()(demo)
app.command()(relay)
app.command()(replay)
app.command()(docs)
app.command()(worker)
app.command()(dashboard.dashboard)
app.command()(simulate)
app.command()(sql_cli.sql)


def main() -> None:
    app()

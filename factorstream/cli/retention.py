"""``factorstream retention show|apply``: the retention policy of every store, what each
holds now, and one enforcement pass over all of them (docs/retention.md).

In normal running each store's owner enforces its policy (the worker, the sinks, the
relay, the dashboard); ``apply`` does the same once, now, e.g. after lowering a period.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from factorstream.cli.context import console, settings_of

app = typer.Typer(
    help="Retention of every store: the policy in force, what each holds, one enforcement pass.",
    no_args_is_help=True,
)

Timeout = typer.Option(10.0, help="Seconds to wait for the Kafka broker.")


@app.command()
def show(ctx: typer.Context, kafka_timeout: float = Timeout) -> None:
    """Each store's policy, the oldest (and for the lake the newest) data it holds now, and
    whether that is within the policy. Exits 1 when a store is outside it."""
    from factorstream.retention_config import retention_report

    now = datetime.now(UTC)
    rows = retention_report(settings_of(ctx), now, kafka_timeout=kafka_timeout)
    table = Table(title=f"retention at {now:%Y-%m-%d %H:%M:%S}Z")
    for column in ("store", "policy", "enforced by", "oldest", "status"):
        table.add_column(column)
    style = {"exception": "bold red", "unknown": "yellow", "within policy": "green"}
    for row in rows:
        table.add_row(
            escape(row["store"]),
            row["policy"],
            escape(row["enforced_by"]),
            row["oldest"] or "(nothing)",
            f"[{style.get(row['status'], '')}]{escape(row['finding'])}[/]"
            if row["status"] in style
            else escape(row["finding"]),
        )
    console.print(table)
    exceptions = [row for row in rows if row["status"] == "exception"]
    for row in exceptions:  # whole, on one line each, however narrow the table came out
        console.print(
            f"[bold red]exception[/]: {escape(row['store'])}: {escape(row['finding'])}",
            soft_wrap=True,
        )
    if exceptions:
        raise typer.Exit(1)


@app.command()
def apply(ctx: typer.Context, kafka_timeout: float = Timeout) -> None:
    """Enforce every store's policy once, now (idempotent): topic configs set, lake
    partitions, ledger data keys, outbox rows and session rows past it deleted. Stops
    between stores on SIGINT, SIGTERM or SIGHUP."""
    from factorstream.retention_config import stores

    settings = settings_of(ctx)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for stopping in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stopping, _stop)
    found = stores(settings, kafka_timeout=kafka_timeout)
    failed = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("retention", total=len(found))
        for store in found:
            if stop.is_set():
                progress.console.print("stopped: the remaining stores are left as they were")
                raise typer.Exit(130)
            progress.update(task, description=escape(store.name))
            try:
                done = store.enforce(datetime.now(UTC))
            except Exception as error:  # one store away: the others still get their pass
                failed += 1
                done = f"[red]failed: {escape(str(error).splitlines()[0][:200])}[/]"
            progress.console.print(f"{escape(store.name)}: {done}")
            progress.advance(task)
    if failed:
        raise typer.Exit(1)

"""``factorstream demo``: the whole pipeline live on this machine, with a simulated company.

1. a Kafka broker: the configured one when it answers, else a local one it starts
   (``<data_dir>/kafka``, stopped again at the end);
2. the stream worker and the dashboard, as child processes (logs in ``<data_dir>/demo``);
3. the simulator through the real verifiers: days of history (backfill, with progress),
   then a live trickle; the demo is *ready* once the worker has folded the backfill
   into the lockouts, the ledger and the lake;
4. the dashboard's URL and the demo auditor's sign-in: name, password and the current
   TOTP code (``factorstream demo --code`` shows it again from another terminal), also
   written to ``<data_dir>/demo/sign-in.txt``; when the output is not a terminal (a log,
   a pipe) they are printed once as plain lines.

Ctrl-C stops everything it started — traffic, dashboard, worker, broker — in that order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from dashboard.app import open_directory
from factorstream.cli.context import console, fail, settings_of
from factorstream.cli.simulate import published_traffic, show_backfill
from factorstream.dashboard_config import dashboard_config
from factorstream.demo import (
    Child,
    DemoAuditor,
    ensure_demo_auditor,
    read_demo_auditor,
    sign_in_lines,
    start_child,
    write_sign_in,
)
from factorstream.localkafka import (
    KafkaUnavailable,
    LocalKafka,
    ensure_pipeline_topics,
    provision,
)
from factorstream.settings import KafkaSecuritySettings, Settings
from factorstream.simulator import driver
from factorstream.simulator.output import StreamDigest
from factorstream.simulator.run import SimulationPlan
from factorstream.simulator.scenarios import SCENARIOS
from streams.topic_reading import group_lag
from verifiers.publish import OutboxRelay, kafka_producer_factory


def demo(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=2, help="People in the simulated company.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Days of history to backfill.")] = 30,
    rate: Annotated[float, typer.Option(min=0, help="Live events/s after the backfill.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated company.")] = 7,
    code: Annotated[
        bool, typer.Option("--code", help="Only show the demo auditor's current TOTP code.")
    ] = False,
) -> None:
    """Run the demo: local Kafka, the worker, simulated traffic and the dashboard."""
    settings = settings_of(ctx)
    if code:
        auditor = read_demo_auditor(settings)
        if auditor is None:
            raise fail("no demo auditor in this data dir yet: run `factorstream demo` first")
        console.print(auditor.code(datetime.now(UTC)))
        return
    try:
        _run(settings, users=users, days=days, rate=rate, seed=seed)
    except KeyboardInterrupt:
        console.print("stopped; nothing the demo started is left running")


def _run(settings: Settings, *, users: int, days: int, rate: float, seed: int) -> None:
    started = time.monotonic()
    stop = threading.Event()
    logging.getLogger("verifiers").setLevel(logging.ERROR)  # simulated delivery failures
    with contextlib.ExitStack() as stack:
        try:
            settings = stack.enter_context(_broker(settings))
        except KafkaUnavailable as error:
            raise fail(str(error)) from None
        logs = settings.data_dir / "demo"
        worker = start_child("worker", ["worker"], settings=settings, log=logs / "worker.log")
        stack.callback(_stopping, worker)
        board = start_child("dashboard", ["dashboard"], settings=settings, log=logs / "dash.log")
        stack.callback(_stopping, board)
        auditor = ensure_demo_auditor(settings, now=datetime.now(UTC))
        # the dashboard's own events (failed sign-ins, lockouts of its users) join the log
        relay = OutboxRelay(
            open_directory(dashboard_config(settings)).store.outbox,
            topic=settings.topics.events,
            producer_factory=kafka_producer_factory(settings.kafka()),
        )
        stack.enter_context(relay.in_background())
        plan = SimulationPlan(
            until=datetime.now(UTC), seed=seed, users=users, days=days, scenarios=tuple(SCENARIOS)
        )
        digest = StreamDigest()
        simulation, pump = stack.enter_context(
            published_traffic(settings, plan, settings.kafka(), digest=digest)
        )
        console.print(f"[bold]backfill[/]: {users} people, {days} days, every attack scenario")
        show_backfill(simulation, pump, digest)
        live = threading.Thread(
            target=driver.live,
            args=(simulation, pump),
            kwargs={"events_per_s": rate, "clock": _now, "stop": stop},
            daemon=True,
        )
        if rate > 0:
            live.start()
            stack.callback(live.join)
        stack.callback(stop.set)  # runs first: the live thread stops before the relay
        url = f"http://{settings.dashboard.host}:{settings.dashboard.port}/"
        with console.status("the worker folds the backfill into lockouts, ledger and lake…"):
            _wait_ready(settings, url, digest.count, children=(worker, board))
        console.print(
            f"[green]✓[/] ready in [bold]{time.monotonic() - started:.0f} s[/]: "
            f"{digest.count:,} events over {days} days in the ledger and the lake"
        )
        _announce(settings, url, auditor, children=(worker, board))


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[Settings]:
    """The configured broker if it answers, else a local one started (and stopped) here
    (PLAINTEXT, on loopback); the settings to use, with the pipeline's topics created."""
    try:
        ensure_pipeline_topics(settings.kafka(), settings.topics, timeout=5)
        yield settings
        return
    except KafkaUnavailable:
        pass
    broker = LocalKafka(
        data_dir=settings.data_dir / "kafka",
        port=settings.kafka_port,
        controller_port=None,
        cache_dir=settings.cache_dir,
    )
    with console.status(f"provisioning Apache Kafka {broker.version} (Maven)…"):
        provision(broker.version, broker.cache_dir)
    with console.status(f"starting Kafka on {broker.bootstrap}…"):
        broker.start()
    try:
        local = settings.model_copy(
            update={
                "kafka_bootstrap": broker.status().bootstrap,
                "kafka_security": KafkaSecuritySettings(),
            }
        )
        ensure_pipeline_topics(local.kafka(), local.topics)
        yield local
    finally:
        with console.status("stopping Kafka…"):
            broker.stop()


def _stopping(child: Child) -> None:
    child.stop()


def _now() -> datetime:
    return datetime.now(UTC)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "login", timeout=3) as response:  # noqa: S310 - local
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(settings: Settings, url: str, events: int, *, children: tuple[Child, ...]) -> None:
    """Until the dashboard answers and the worker's group has committed every event and
    every derived event it fed the ledger and the lake from."""
    app_id, names = settings.stream.app_id, settings.topics
    topics = [names.events, f"{app_id}-events-ingested", names.lockouts, names.anomalies]
    while True:
        for child in children:
            if not child.alive():
                raise fail(f"the {child.name} stopped:\n{child.tail()}")
        if _answers(url) and group_lag(settings.kafka(), app_id, topics) == 0:
            return
        time.sleep(1)


def _announce(
    settings: Settings, url: str, auditor: DemoAuditor, *, children: tuple[Child, ...]
) -> None:
    """Write the sign-in to its file and show it until Ctrl-C: refreshed in a panel on a
    terminal, else (a log, a pipe) once, as plain lines no width cuts."""
    saved = write_sign_in(settings, url, auditor, now=_now())
    if console.is_terminal:
        _show_sign_in(url, auditor, saved, children=children)
        return
    for line in [*sign_in_lines(url, auditor, now=_now()), f"(also in {saved})"]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    _watch(children=children)


def _show_sign_in(
    url: str, auditor: DemoAuditor, saved: Path, *, children: tuple[Child, ...]
) -> None:
    """The URL and the sign-in, the code refreshed each second, until Ctrl-C."""

    def panel() -> Panel:
        now = _now()
        table = Table.grid(padding=(0, 2))
        table.add_row("dashboard", f"[bold]{url}[/]")
        table.add_row("user", f"[bold]{auditor.name}[/] (auditor)")
        table.add_row("password", f"[bold]{auditor.password}[/]")
        table.add_row(
            "TOTP code",
            f"[bold green]{auditor.code(now)}[/] (next in {auditor.seconds_left(now)} s; "
            f"or add secret {auditor.secret} to an authenticator app)",
        )
        table.add_row("saved in", str(saved))
        return Panel(table, title="factorstream demo — Ctrl-C stops everything", expand=False)

    with Live(panel(), console=console, refresh_per_second=2) as live:
        _watch(children=children, every=lambda: live.update(panel()))


def _watch(*, children: tuple[Child, ...], every: Callable[[], None] = lambda: None) -> None:
    """Until Ctrl-C, or fail when a child stops; ``every`` runs each half second."""
    while True:
        for child in children:
            if not child.alive():
                raise fail(f"the {child.name} stopped:\n{child.tail()}")
        time.sleep(0.5)
        every()

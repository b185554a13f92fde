"""``factorstream simulate``: a seeded organisation's MFA traffic, with attack scenarios."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from factorstream.cli.context import console, fail, settings_of
from factorstream.control_keys import control_signing_key
from factorstream.localkafka import KafkaUnavailable, ensure_pipeline_topics
from factorstream.settings import Settings
from factorstream.simulator import driver
from factorstream.simulator.output import EventSink, JsonlSink, KafkaSink, StreamDigest
from factorstream.simulator.run import (
    Simulation,
    SimulationPlan,
    fast_simulation,
    verifier_simulation,
    verifier_store,
)
from factorstream.simulator.scenarios import SCENARIOS
from verifiers.kafka_connection import KafkaConnection
from verifiers.publish import OutboxRelay, kafka_producer_factory


def simulate(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=2, help="People in the organisation.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Days of history to backfill.")] = 30,
    rate: Annotated[
        float,
        typer.Option(min=0, help="Live events/s after the backfill; 0 stops after the backfill."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed, same organisation and events.")] = 7,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A scenario to include (repeatable): {', '.join(SCENARIOS)} "
            "(each an attack, but account_lifecycle)."
        ),
    ] = None,
    scenarios: Annotated[
        str, typer.Option(help="`all` or `none`, when no --scenario is given.")
    ] = "all",
    fast: Annotated[
        bool,
        typer.Option(help="Build the events directly, straight to Kafka (no ceremonies)."),
    ] = False,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (default: the setting).")
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write the events to this file instead of Kafka.")
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="End of the backfill, UTC (default: now); fix it to replay a seed."),
    ] = None,
) -> None:
    """Simulate sign-ins of an organisation through the real verifiers, with attacks.

    The backfill runs as fast as it can with historical timestamps; with --rate, live
    traffic follows until Ctrl-C. Prints the event count and the stream's SHA-256 digest.
    """
    settings = settings_of(ctx)
    chosen = _scenarios(scenario or [], scenarios)
    end = (until.replace(tzinfo=UTC) if until and until.tzinfo is None else until) or _now()
    plan = SimulationPlan(until=end, seed=seed, users=users, days=days, scenarios=chosen)
    logging.getLogger("verifiers").setLevel(logging.ERROR)  # expected delivery failures
    broker = replace(settings.kafka(), bootstrap=bootstrap) if bootstrap else settings.kafka()
    if jsonl is None:
        try:  # the pipeline's partition counts, before anything auto-creates the topic
            ensure_pipeline_topics(broker, settings.topics, timeout=15)
        except KafkaUnavailable as error:
            raise fail(
                f"{error} (start one with `factorstream kafka up`, or use --jsonl)"
            ) from None
    digest, sink = StreamDigest(), _sink(settings, jsonl, broker, fast=fast)
    target = str(jsonl) if jsonl else f"{settings.topics.events} on {broker.describe()}"
    console.print(
        f"simulating [bold]{users}[/] people over [bold]{days}[/] days "
        f"({'fast' if fast else 'verifiers'}; scenarios: {', '.join(chosen) or 'none'}) → {target}"
    )
    with contextlib.ExitStack() as stack:
        if sink is not None:
            stack.callback(sink.close)
        if fast:
            # published: signed with the key this data dir's pipeline trusts
            key = None if sink is None or jsonl else control_signing_key(settings)
            simulation, service = fast_simulation(plan, admins_key=key)
            pump = driver.fast_pump(service, digest, sink)
        elif jsonl is None:
            simulation, pump = stack.enter_context(
                published_traffic(settings, plan, broker, digest=digest)
            )
        else:
            store = verifier_store(settings.data_dir / "simulator" / "verifiers.db", seed=seed)
            simulation = verifier_simulation(plan, store)
            pump = driver.outbox_pump(store, digest, sink)
        started = time.perf_counter()
        show_backfill(simulation, pump, digest)
        seconds = time.perf_counter() - started
        console.print(
            f"backfill: [bold]{digest.count}[/] events in {seconds:.1f}s "
            f"({digest.count / max(seconds, 1e-9):,.0f}/s); digest sha256:{digest.hexdigest()}"
        )
        if rate > 0:
            _live(simulation, pump, rate)
            console.print(f"live: {digest.count} events in all; digest sha256:{digest.hexdigest()}")


@contextlib.contextmanager
def published_traffic(
    settings: Settings, plan: SimulationPlan, broker: KafkaConnection, *, digest: StreamDigest
) -> Iterator[tuple[Simulation, driver.Pump]]:
    """The plan's simulation through the real verifiers (their database recreated in
    data_dir), its outbox published to the events topic by a relay thread; what is left
    is drained on leaving."""
    store = verifier_store(settings.data_dir / "simulator" / "verifiers.db", seed=plan.seed)
    # the administrators sign with the key this data dir's pipeline trusts
    simulation = verifier_simulation(plan, store, admins_key=control_signing_key(settings))
    relay = OutboxRelay(
        store.outbox,
        topic=settings.topics.events,
        producer_factory=kafka_producer_factory(broker),
    )
    with relay.in_background():
        yield simulation, driver.outbox_pump(store, digest, None)
    console.print(f"published {relay.published} events to {settings.topics.events}")


def _scenarios(named: list[str], switch: str) -> tuple[str, ...]:
    if unknown := sorted(set(named) - set(SCENARIOS)):
        raise fail(f"unknown scenario(s) {', '.join(unknown)}; expected {', '.join(SCENARIOS)}")
    if named:
        return tuple(dict.fromkeys(named))
    if switch not in ("all", "none"):
        raise fail(f"--scenarios: expected all or none, got {switch!r}")
    return tuple(SCENARIOS) if switch == "all" else ()


def _sink(
    settings: Settings, jsonl: Path | None, broker: KafkaConnection, *, fast: bool
) -> EventSink | None:
    if jsonl is not None:
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        return JsonlSink(jsonl)
    if fast:
        producer = kafka_producer_factory(broker)()
        return KafkaSink(producer, settings.topics.events)
    return None  # the outbox relay publishes


def show_backfill(simulation: Simulation, pump: driver.Pump, digest: StreamDigest) -> None:
    """The backfill, with a rich progress bar; without a terminal (a log, a pipe), a plain
    line for each simulated day done."""
    start, end = simulation.plan.start, simulation.plan.until
    total = max((end - start).total_seconds(), 1.0)
    if not console.is_terminal:
        days_done = 0

        def log_day(now: datetime) -> None:
            nonlocal days_done
            done = (now - start).total_seconds()
            if (day := int(done // 86_400)) > days_done:
                days_done = day
                console.print(
                    f"backfill: {now:%Y-%m-%d %H:%M}, {100 * done / total:.0f} %,"
                    f" {digest.count:,} events",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )

        driver.backfill(simulation, pump, on_progress=log_day)
        console.print(f"backfill: done, {digest.count:,} events", markup=False, highlight=False)
        return
    with Progress(
        TextColumn("[bold]backfill[/]"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total)

        def advance(now: datetime) -> None:
            progress.update(
                task,
                completed=(now - start).total_seconds(),
                description=f"{now:%Y-%m-%d %H:%M} · {digest.count:,} events",
            )

        driver.backfill(simulation, pump, on_progress=advance)


def _live(simulation: Simulation, pump: driver.Pump, rate: float) -> None:
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    console.print(f"live traffic at ~{rate:g} events/s (Ctrl-C to stop)")
    driver.live(simulation, pump, events_per_s=rate, clock=_now, stop=stop)


def _now() -> datetime:
    return datetime.now(UTC)

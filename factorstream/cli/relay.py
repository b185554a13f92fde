"""``factorstream relay``: publish a service database's outbox to Kafka."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from factorstream.cli.context import console, settings_of
from factorstream.settings import Settings
from verifiers.publish import Backoff, Outbox, OutboxRelay, kafka_producer_factory, outbox_engine


def build_relay(settings: Settings) -> OutboxRelay:
    """The relay for the configured outbox database and broker."""
    outbox = Outbox(outbox_engine(settings.outbox_database_url()))
    outbox.create()
    relay = settings.relay
    return OutboxRelay(
        outbox,
        topic=settings.topics.events,
        producer_factory=kafka_producer_factory(
            settings.kafka_bootstrap, linger_ms=relay.linger_ms
        ),
        batch_size=relay.batch_size,
        poll_interval_s=relay.poll_interval_s,
        backoff=Backoff(relay.backoff_initial_s, relay.backoff_max_s),
    )


def relay(
    ctx: typer.Context,
    drain: bool = typer.Option(False, help="Exit once the outbox is empty."),
) -> None:
    """Publish outbox rows to the events topic until stopped (SIGINT/SIGTERM)."""
    settings = settings_of(ctx)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    outbox_relay = build_relay(settings)
    console.print(
        f"relaying [bold]{settings.outbox_database_url()}[/] → "
        f"[bold]{settings.topics.events}[/] on {settings.kafka_bootstrap} "
        f"({outbox_relay.outbox.pending()} pending)"
    )
    if drain:
        outbox_relay.drain(timeout_s=3600)
    else:
        stop = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        outbox_relay.run(stop)
    console.print(f"published {outbox_relay.published} events")

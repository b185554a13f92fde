"""``factorstream relay``: publish the outboxes of this deployment to Kafka.

Two databases stage events: the verifiers' (``outbox_url``) and the dashboard's users
database, whose own sign-ins are MFA ceremonies too (a password sprayed at the audit
console must reach the detections, the ledger and IP blocking like any other). The relay
publishes both, each in its own thread; the dashboard's only once it exists (a relay never
creates it) and only once when both URLs name one database."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import typer
from sqlalchemy.engine import make_url

from factorstream.cli.context import console, redacted, settings_of
from factorstream.retention_config import days
from factorstream.settings import Settings
from verifiers.publish import Backoff, Outbox, OutboxRelay, kafka_producer_factory, outbox_engine


def build_relay(settings: Settings, url: str | None = None) -> OutboxRelay:
    """The relay for one outbox database (the verifiers' unless ``url`` names another)."""
    outbox = Outbox(outbox_engine(url or settings.outbox_database_url()))
    outbox.create()
    relay = settings.relay
    return OutboxRelay(
        outbox,
        topic=settings.topics.events,
        producer_factory=kafka_producer_factory(settings.kafka(), linger_ms=relay.linger_ms),
        batch_size=relay.batch_size,
        poll_interval_s=relay.poll_interval_s,
        backoff=Backoff(relay.backoff_initial_s, relay.backoff_max_s),
        keep_sent=days(settings.retention.outbox_sent_days),
    )


def outbox_urls(settings: Settings, *, existing: bool = False) -> list[str]:
    """Every outbox database to relay: the verifiers' (only if it exists, when
    ``existing``), then the dashboard's if it exists; one database named twice counts once."""
    verifiers, dashboard = settings.outbox_database_url(), settings.dashboard_database_url()
    urls = [verifiers] if not existing or _exists(verifiers) else []
    if _exists(dashboard) and make_url(dashboard) != make_url(verifiers):
        urls.append(dashboard)
    return urls


def _exists(url: str) -> bool:
    """A SQLite database whose file exists, or any other database (a server is asked by
    connecting, not here)."""
    parsed = make_url(url)
    return parsed.get_backend_name() != "sqlite" or Path(parsed.database or "").is_file()


def relay(
    ctx: typer.Context,
    drain: bool = typer.Option(False, help="Exit once the outbox is empty."),
) -> None:
    """Publish outbox rows to the events topic until stopped (SIGINT/SIGTERM)."""
    settings = settings_of(ctx)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    relays = [(url, build_relay(settings, url)) for url in outbox_urls(settings)]
    for url, outbox_relay in relays:
        console.print(
            f"relaying [bold]{redacted(url)}[/] → [bold]{settings.topics.events}[/] on "
            f"{settings.kafka().describe()} ({outbox_relay.outbox.pending()} pending)"
        )
    with _probes(settings, relays):
        _relay(relays, drain=drain)
    published = sum(outbox_relay.published for _, outbox_relay in relays)
    console.print(f"published {published} events")


def _probes(
    settings: Settings, relays: list[tuple[str, OutboxRelay]]
) -> contextlib.AbstractContextManager[object]:
    """``/health``, ``/ready`` (every outbox database and a broker answer) and
    ``/metrics`` on ``relay.probes_port`` (unset: nothing)."""
    port = settings.relay.probes_port
    if port is None:
        return contextlib.nullcontext()
    from factorstream.metrics import ProbeServer, broker_answers, database_answers, metrics_registry

    registry = metrics_registry()
    if registry is not None:
        from verifiers.relay_metrics import RelayMetrics

        metrics = RelayMetrics(registry)
        for url, outbox_relay in relays:
            metrics.watch(outbox_relay, _outbox_name(settings, url))
    databases = {_outbox_name(settings, url): database_answers(url) for url, _ in relays}
    servers = settings.kafka().servers

    def ready() -> dict[str, bool]:
        checks = {f"database_{name}": answers() for name, answers in databases.items()}
        checks["broker"] = broker_answers(servers)
        return checks

    server = ProbeServer(settings.relay.probes_host, port, ready=ready, registry=registry)
    console.print(f"probes on http://{settings.relay.probes_host}:{server.port}/ready, /metrics")
    return server


def _outbox_name(settings: Settings, url: str) -> str:
    return "verifiers" if url == settings.outbox_database_url() else "dashboard"


def _relay(relays: list[tuple[str, OutboxRelay]], *, drain: bool) -> None:
    if drain:
        for _, outbox_relay in relays:
            outbox_relay.drain(timeout_s=3600)
    else:
        stop = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        for stopping in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stopping, _stop)
        threads = [
            threading.Thread(target=outbox_relay.run, args=(stop,), name=f"relay-{n}")
            for n, (_, outbox_relay) in enumerate(relays)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # the main thread stays free for the signals

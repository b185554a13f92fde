"""``factorstream alerts``: deliver detections, lockouts and IP blocks to the SOC.

``run`` reads the lockouts and anomalies topics, a consumer group per destination
(``<app_id>-alerts-<destination>``), until SIGINT, SIGTERM or SIGHUP; ``test`` sends one
test alert to a destination; ``destinations`` lists them. See docs/alerts.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from factorstream.cli.context import console, fail, settings_of
from factorstream.settings import Settings

if TYPE_CHECKING:
    from alerts.config import AlertsConfig
    from alerts.metrics import AlertMetrics

app = typer.Typer(help="Alerts to the SOC: webhooks, Slack, syslog, OCSF.", no_args_is_help=True)
LogLevel = typer.Option("info", help="Log level: debug, info, warning, error.")
Only = typer.Option([], "--only", help="Only this destination (repeatable).")


def _config(settings: Settings) -> AlertsConfig:
    from alerts.errors import AlertsError
    from factorstream.alerts_config import alerts_config

    try:
        config = alerts_config(settings)
    except (AlertsError, OSError, ValueError) as error:
        raise fail(f"alerts: {error}") from None
    if not config.destinations:
        raise fail("alerts: no destination (set FACTORSTREAM_ALERTS__DESTINATIONS, JSON)")
    return config


@app.command()
def destinations(ctx: typer.Context) -> None:
    """List the configured destinations and the routes to each."""
    config = _config(settings_of(ctx))
    for d in config.destinations:
        where = d.url if d.kind != "syslog" else f"{d.transport}://{d.host}:{d.port}"
        signed = " (signed)" if d.secret else ""
        console.print(f"[bold]{d.name}[/] {d.kind} {d.format} {where}{signed}")
        for route in config.routes:
            if d.name in route.destinations:
                console.print(
                    f"  tenants={sorted(route.tenants) if route.tenants else 'all'} "
                    f"types={sorted(route.types) if route.types else 'all'} "
                    f"detections={sorted(route.detections) if route.detections else 'all'} "
                    f"min_severity={route.min_severity}"
                )
        if not config.routes:
            console.print(f"  every alert of {config.default_min_severity} or above")


@app.command()
def test(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The destination's name."),
    severity: str = typer.Option("low", help="Severity of the test alert."),
    give_up_after_s: float = typer.Option(30.0, help="Retry this long before giving up."),
) -> None:
    """Send one test alert to a destination (retried with backoff) and say how it went."""
    from dataclasses import replace

    from alerts.config import SEVERITIES
    from alerts.delivery import deliver
    from alerts.errors import AlertsError
    from alerts.model import Alert
    from alerts.transports import transport_for
    from schemas import uuid7

    if severity not in SEVERITIES:
        raise fail(f"--severity: one of {', '.join(SEVERITIES)}")
    config = _config(settings_of(ctx))
    try:
        destination = config.destination(name)
    except AlertsError as error:
        raise fail(str(error)) from None
    now = datetime.now(UTC)
    alert = Alert(
        id=f"test-{uuid7(now)}",
        kind="test",
        type="risk.detected",
        tenant="factorstream-test",
        severity=severity,
        title="factorstream test alert",
        text=f"A test alert to {name}: if you read this, alerts reach you.",
        group=("factorstream-test", "risk.detected", "test", "*"),
        time=now,
        subject="test",
        detection="test",
    )
    key = alert.dedup_key(name)
    retry = replace(config.retry, give_up_after_s=give_up_after_s)

    async def send() -> bool:
        transport = transport_for(destination)
        try:
            result = await deliver(transport, alert, key, retry, stop=asyncio.Event())
            if result.outcome.delivered:
                await transport.confirm()
            console.print(
                f"{name}: {'delivered' if result.outcome.delivered else 'NOT delivered'} "
                f"after {result.attempts} attempt(s) {result.outcome.reason} (dedup key {key})"
            )
            return result.outcome.delivered
        finally:
            transport.close()

    if not asyncio.run(send()):
        raise typer.Exit(1)


@app.command()
def run(
    ctx: typer.Context,
    only: list[str] = Only,
    loglevel: str = LogLevel,
) -> None:
    """Deliver alerts until stopped (SIGINT, SIGTERM, SIGHUP); creates missing topics first.

    On a stop the fetch in hand is finished, or left uncommitted and read again on start."""
    from factorstream.localkafka import KafkaUnavailable, ensure_pipeline_topics, ensure_topics
    from streams.noise import limit_kafka_client_logs
    from verifiers.kafka_connection import aiokafka_config

    settings = settings_of(ctx)
    config = _config(settings)
    unknown = sorted(set(only) - {d.name for d in config.destinations})
    if unknown:
        raise fail(f"--only: no destination {', '.join(unknown)}")
    logging.basicConfig(
        level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    kafka = settings.kafka()
    try:
        ensure_pipeline_topics(kafka, settings.topics)
        ensure_topics(kafka, {config.dead_letter_topic: settings.topics.derived_partitions})
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    names = [d.name for d in config.destinations if not only or d.name in only]
    console.print(
        f"alerts [bold]{config.group_prefix}[/] on {kafka.describe()}: "
        f"{', '.join(config.topics)} to {', '.join(names)}"
    )
    limit_kafka_client_logs()
    probes: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    metrics = None
    port = settings.alerts.probes_port
    if port is not None:
        from factorstream.metrics import ProbeServer, broker_answers, metrics_registry

        registry = metrics_registry()
        if registry is not None:
            from alerts.metrics import AlertMetrics

            metrics = AlertMetrics(registry)
        servers = kafka.servers
        probes = ProbeServer(
            settings.alerts.probes_host,
            port,
            ready=lambda: {"broker": broker_answers(servers)},
            registry=registry,
        )
        console.print(f"probes on http://{settings.alerts.probes_host}:{port}/ready, /metrics")
    with probes:
        asyncio.run(_run(config, aiokafka_config(kafka), tuple(only), metrics))
    console.print("alerts stopped")


async def _run(
    config: AlertsConfig,
    kafka_config: Mapping[str, Any],
    only: tuple[str, ...],
    metrics: AlertMetrics | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    # imported after: the probes already say ready, and a stop during this import (about
    # a second) must stop cleanly, not interrupt it
    from alerts.host import run_alerts

    await run_alerts(
        config,
        consumer_config=kafka_config,
        producer_config=kafka_config,
        stop=stop,
        only=only,
        metrics=metrics,
    )

"""``factorstream kafka``: a local single-node Apache Kafka broker (KRaft) without Docker.

With ``kafka_security.protocol=SASL_SSL`` the local broker listens with SCRAM over TLS
only, its super user being the configured one (``factorstream.localkafka.BrokerSecurity``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from factorstream.cli.context import console, fail, settings_of
from factorstream.kafka_access import grant as create_grants
from factorstream.kafka_access import pipeline_acls
from factorstream.localkafka import (
    BrokerSecurity,
    KafkaUnavailable,
    LocalKafka,
    ensure_pipeline_topics,
    provision,
    topic_partitions,
)
from factorstream.retention_config import topic_retention_configs
from factorstream.settings import Settings

app = typer.Typer(
    help="A local Apache Kafka broker (single node, KRaft) run from the official jars.",
    no_args_is_help=True,
)

DataDirOption = typer.Option(
    None, "--data-dir", help="Broker state (logs, pid file). Default: <data_dir>/kafka."
)


def _broker(
    settings: Settings,
    *,
    port: int | None = None,
    controller_port: int | None = None,
    data_dir: Path | None = None,
) -> LocalKafka:
    """The local broker of ``data_dir``, on the settings' port unless one is given; secured
    (SASL_SSL, the configured user its super user) when the settings ask for SASL_SSL."""
    return LocalKafka(
        data_dir=data_dir if data_dir is not None else settings.data_dir / "kafka",
        port=port if port is not None else settings.kafka_port,
        controller_port=controller_port,
        cache_dir=settings.cache_dir,
        security=_broker_security(settings),
    )


def _broker_security(settings: Settings) -> BrokerSecurity | None:
    kafka = settings.kafka()
    if kafka.protocol == "PLAINTEXT":
        return None
    if kafka.protocol != "SASL_SSL" or kafka.username is None or kafka.password is None:
        raise fail(
            f"a local broker runs with PLAINTEXT or SASL_SSL, not {kafka.protocol} "
            "(FACTORSTREAM_KAFKA_SECURITY__PROTOCOL)"
        )
    try:
        return BrokerSecurity(
            admin_user=kafka.username,
            admin_password=kafka.password,
            mechanism=kafka.sasl_mechanism,
        )
    except ValueError as error:
        raise fail(f"kafka_security: {error}") from None


@app.command()
def up(
    ctx: typer.Context,
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Client port. Default: the kafka_port setting (9092)."
    ),
    controller_port: int | None = typer.Option(
        None, min=1, max=65535, help="KRaft controller port. Default: port + 1."
    ),
    data_dir: Path | None = DataDirOption,
    timeout: float = typer.Option(90.0, min=1, help="Seconds to wait for the broker."),
) -> None:
    """Provision the Kafka jars (Maven), start the broker and create the pipeline's topics.

    Does nothing but report when the broker of this data dir is already running.
    """
    settings = settings_of(ctx)
    broker = _broker(settings, port=port, controller_port=controller_port, data_dir=data_dir)
    try:
        with console.status(f"Provisioning Apache Kafka {broker.version} (Maven)…"):
            provision(broker.version, broker.cache_dir)
        with console.status(f"Starting the broker on {broker.bootstrap}…"):
            started = broker.start(timeout=timeout)
        status = broker.status()
        with console.status("Creating topics…"):
            created = ensure_pipeline_topics(
                replace(broker.connection(), bootstrap=status.bootstrap),
                settings.topics,
                retention=topic_retention_configs(settings),
            )
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    if started:
        console.print(f"[green]✓[/] Kafka {broker.version} running (pid {status.pid})")
    else:
        console.print(f"[yellow]•[/] Kafka already running (pid {status.pid}), nothing to do")
    if created:
        console.print(f"[green]✓[/] created topics: {', '.join(created)}")
    console.print(f"bootstrap: [bold]{status.bootstrap}[/]   data: {status.data_dir}")
    if status.bootstrap != settings.kafka_bootstrap:
        console.print(f"  export FACTORSTREAM_KAFKA_BOOTSTRAP={status.bootstrap}")
    ca_file = broker.connection().ca_file
    if ca_file is not None and settings.kafka_security.ca_file != ca_file:
        console.print(f"  export FACTORSTREAM_KAFKA_SECURITY__CA_FILE={ca_file}")


@app.command()
def down(
    ctx: typer.Context,
    data_dir: Path | None = DataDirOption,
    kill: bool = typer.Option(False, "--kill", help="Stop hard (SIGKILL), like a crash."),
    timeout: float = typer.Option(30.0, min=1, help="Seconds before SIGTERM becomes SIGKILL."),
) -> None:
    """Stop the local broker; its topics and messages stay in the data dir."""
    broker = _broker(settings_of(ctx), data_dir=data_dir)
    pid = broker.running_pid()
    with console.status("Stopping the broker…"):
        stopped = broker.kill() if kill else broker.stop(timeout=timeout)
    if stopped:
        console.print(f"[green]✓[/] Kafka stopped (pid {pid}{', killed' if kill else ''})")
    else:
        console.print(f"[yellow]•[/] Kafka is not running in {broker.data_dir}")


@app.command()
def status(ctx: typer.Context, data_dir: Path | None = DataDirOption) -> None:
    """Show whether the local broker runs (exit 1 when it does not) and its topics."""
    broker = _broker(settings_of(ctx), data_dir=data_dir)
    current = broker.status()
    if not current.running:
        raise fail(f"Kafka is not running in {current.data_dir} (start it: factorstream kafka up)")
    console.print(f"[green]●[/] Kafka running: pid {current.pid}, bootstrap {current.bootstrap}")
    console.print(f"  data: {current.data_dir}")
    try:
        kafka = replace(broker.connection(), bootstrap=current.bootstrap)
        partitions = topic_partitions(kafka, timeout=10.0)
    except KafkaUnavailable as error:
        raise fail(f"the broker process runs but does not answer: {error}") from None
    table = Table("topic", "partitions", box=None)
    for name, count in sorted(partitions.items()):
        table.add_row(name, str(count))
    console.print(table)


@app.command()
def topics(ctx: typer.Context) -> None:
    """Create the pipeline's topics on the configured cluster (FACTORSTREAM_KAFKA_BOOTSTRAP),
    with the retention policy's configs (docs/retention.md).

    For any cluster, e.g. the one of ``docker compose``; idempotent.
    """
    settings = settings_of(ctx)
    try:
        with console.status(f"Creating topics on {settings.kafka().describe()}…"):
            created = ensure_pipeline_topics(
                settings.kafka(), settings.topics, retention=topic_retention_configs(settings)
            )
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    wanted = settings.topics.partitions()
    console.print(f"[green]✓[/] {len(wanted)} topics present ({len(created)} created)")


Services = typer.Option(
    [], help="SCRAM user of a service that may write the events topic (repeat)."
)
Auditors = typer.Option([], help="SCRAM user that may read the checkpoints topic (repeat).")


@app.command()
def grant(
    ctx: typer.Context,
    worker: str = typer.Option(..., help="SCRAM user of the worker and the sinks."),
    service: list[str] = Services,
    auditor: list[str] = Auditors,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the ACLs, create none."),
) -> None:
    """Create the pipeline's ACLs on the configured cluster, as the configured (admin) user.

    Services write the events topic and nothing else; the worker reads it and alone
    writes the derived topics and its own `<app_id>-` topics and groups; auditors read
    the checkpoints. The broker must deny what no ACL allows (an authorizer).
    """
    settings = settings_of(ctx)
    grants = pipeline_acls(
        settings.topics,
        app_id=settings.stream.app_id,
        worker=worker,
        services=service,
        auditors=auditor,
    )
    for line in grants:
        console.print(f"  ALLOW {line}", highlight=False)
    if dry_run:
        return
    try:
        with console.status(f"Creating {len(grants)} ACLs on {settings.kafka().describe()}…"):
            create_grants(settings.kafka(), grants)
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    console.print(f"[green]✓[/] {len(grants)} ACLs present")

"""``factorstream worker``: run the stream worker (ingest, lockout fold, lockout API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import typer
from kafka.errors import KafkaError

from factorstream.cli.context import console, fail, settings_of
from factorstream.localkafka import (
    KafkaUnavailable,
    admin_client,
    ensure_topics,
    topic_partitions,
)
from factorstream.settings import Settings

if TYPE_CHECKING:
    from streams.app import TopicSpec

_TOPIC_ALREADY_EXISTS = 36


def worker(
    ctx: typer.Context,
    loglevel: str = typer.Option("info", help="Log level: debug, info, warning, error."),
) -> None:
    """Run the stream worker until stopped (SIGINT/SIGTERM); creates missing topics first."""
    import faust  # the worker's heavy imports, kept off every other command's start

    from streams.app import create_pipeline, internal_topics

    settings = settings_of(ctx)
    pipeline = create_pipeline(settings)
    try:
        _check_events_topic(settings)
        created = _create_internal_topics(settings.kafka_bootstrap, internal_topics(pipeline))
    except KafkaUnavailable as error:
        raise fail(str(error)) from None
    stream, names = settings.stream, settings.topics
    console.print(
        f"worker [bold]{stream.app_id}[/] on {settings.kafka_bootstrap}: "
        f"{names.events} → {names.lockouts}, dead letters to {names.dlq} "
        f"({len(created)} internal topics created); "
        f"lockout API on http://{stream.web_host}:{stream.web_port}/lockouts/"
    )
    (settings.data_dir / "streams").mkdir(parents=True, exist_ok=True)  # Faust makes one level
    runner = faust.Worker(pipeline.app, loglevel=loglevel)
    # at warning and above Faust adds a terminal spinner and sets the root logger to DEBUG
    # for it: every debug call of Faust and aiokafka then builds a log record (~5% CPU)
    runner.spinner = None
    runner.execute_from_commandline()


def _check_events_topic(settings: Settings) -> None:
    """Create the pipeline's topics; the events topic must have the configured partitions."""
    names = settings.topics
    ensure_topics(settings.kafka_bootstrap, names.partitions())
    found = topic_partitions(settings.kafka_bootstrap).get(names.events)
    if found != names.events_partitions:  # the tables are co-partitioned with it
        raise KafkaUnavailable(
            f"topic {names.events} has {found} partitions, the settings say "
            f"{names.events_partitions} (FACTORSTREAM_TOPICS__EVENTS_PARTITIONS)"
        )


def _create_internal_topics(bootstrap: str, specs: Mapping[str, TopicSpec]) -> list[str]:
    """Create the missing internal topics with Faust's configs; returns those created."""
    try:
        with admin_client(bootstrap) as client:
            existing = set(client.list_topics())
            wanted = {
                name: {
                    "num_partitions": spec.partitions,
                    "replication_factor": -1,
                    "configs": dict(spec.configs),
                }
                for name, spec in specs.items()
                if name not in existing
            }
            if not wanted:
                return []
            result = client.create_topics(wanted, raise_errors=False, wait_for_metadata=True)
    except KafkaError as error:
        raise KafkaUnavailable(f"creating internal topics failed: {error}") from error
    failed = [
        f"{topic['name']}: {topic.get('error_message') or topic['error_code']}"
        for topic in result["topics"]
        if topic["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise KafkaUnavailable(f"creating internal topics failed: {'; '.join(failed)}")
    return sorted(wanted)

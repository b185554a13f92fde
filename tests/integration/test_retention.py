"""Retention on the real stores: topic configs on the session's Kafka broker (set, drift
reported, other configs kept), outboxes and dashboard sessions on SQLite and PostgreSQL,
and ``retention show|apply`` over a whole data dir (lake, ledger, outboxes, sessions,
topics): old data goes, recent data stays, the report turns from exceptions to within
policy."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from typer.testing import CliRunner

from analytics.lake import LakeWriter, ensure_lake
from audit.ledger import open_ledger
from dashboard.users import metadata as dashboard_metadata
from dashboard.users import sessions
from factorstream.cli import app
from factorstream.localkafka import ensure_pipeline_topics
from factorstream.retention_config import align_topic_retention, stores, topic_retention_configs
from factorstream.settings import Settings, TopicSettings
from factorstream.topic_config import oldest_record_times, topic_configs
from tests.factories import sample_event
from tests.kafka_broker import KafkaBroker
from verifiers.publish import Outbox, outbox_engine, outbox_events

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _settings(data_dir: Path, bootstrap: str = "127.0.0.1:9", **overrides: object) -> Settings:
    prefix = f"ret.{uuid.uuid4().hex[:8]}"
    return Settings(
        data_dir=data_dir,
        kafka_bootstrap=bootstrap,
        topics=TopicSettings.under(prefix),
        stream={"app_id": prefix},  # type: ignore[arg-type]
        alerts={"dead_letter_topic": f"{prefix}.alerts.dlq"},  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )


def _store(settings: Settings, name: str):  # type: ignore[no-untyped-def]
    return next(store for store in stores(settings, kafka_timeout=5) if store.name == name)


# -- topics ---------------------------------------------------------------------------


def test_topic_retention_is_set_drift_reported_and_other_configs_kept(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, kafka_broker.bootstrap)
    topics = settings.topics
    ensure_pipeline_topics(kafka_broker.bootstrap, topics)  # as `kafka up` or a sink makes them
    drift = align_topic_retention(settings, apply=False)
    assert any(f"topic {topics.events}: retention.ms" in line for line in drift)
    applied = align_topic_retention(settings, apply=True)
    assert applied == [line.replace("the settings want", "set to") for line in drift]
    found = _configs_once_applied(kafka_broker.bootstrap, topics.partitions())
    assert found[topics.events]["retention.ms"] == str(7 * 86_400_000)
    assert found[topics.events]["segment.ms"] == "86400000"
    assert found[topics.events]["message.timestamp.type"] == "LogAppendTime"  # untouched
    assert found[topics.dlq]["retention.ms"] == str(14 * 86_400_000)
    assert found[topics.checkpoints]["retention.ms"] == "-1"
    assert align_topic_retention(settings, apply=True) == []  # idempotent
    # an operator shortens the events topic's period: the next start reports and sets it
    shorter = settings.model_copy(
        update={"retention": settings.retention.model_copy(update={"events_topic_days": 2.0})}
    )
    assert align_topic_retention(shorter) == [
        f"topic {topics.events}: retention.ms was {7 * 86_400_000}, set to {2 * 86_400_000}"
    ]


def _configs_once_applied(bootstrap: str, topics: object) -> dict[str, dict[str, str]]:
    """The topics' configs once the broker shows the retention just set (an alter is
    acknowledged before every broker's metadata has it)."""
    deadline = time.monotonic() + 15
    while True:
        found = topic_configs(bootstrap, topics)  # type: ignore[arg-type]
        if all("retention.ms" in configs for configs in found.values()):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_the_oldest_record_of_a_topic_is_read(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    settings = _settings(tmp_path, kafka_broker.bootstrap)
    ensure_pipeline_topics(kafka_broker.bootstrap, settings.topics)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    producer.send(
        settings.topics.lockouts, b"x", timestamp_ms=int((NOW - 3 * DAY).timestamp() * 1000)
    )
    producer.send(settings.topics.lockouts, b"y")
    producer.flush()
    producer.close()
    oldest = oldest_record_times(
        kafka_broker.bootstrap, [settings.topics.lockouts, settings.topics.anomalies]
    )
    assert oldest[settings.topics.anomalies] is None
    found = oldest[settings.topics.lockouts]
    assert found is not None and abs(found - (NOW - 3 * DAY)) < timedelta(seconds=1)
    report = _store(settings, f"topic {settings.topics.lockouts}").report()
    assert report.status(NOW) == "within policy"


# -- outboxes and sessions on SQLite and PostgreSQL -----------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS outbox_events, dashboard_sessions")
    engine.dispose()
    return url


def _stage(outbox: Outbox, sent: dict[str, datetime | None]) -> dict[str, str]:
    """One event per label, marked sent at its time (``None``: not relayed yet)."""
    ids = {}
    with outbox.engine.begin() as connection:
        for n, (label, sent_at) in enumerate(sent.items()):
            event = sample_event(subject=f"u-{n}", now=NOW - 30 * DAY)
            outbox.add(connection, [event])
            connection.execute(
                outbox_events.update()
                .where(outbox_events.c.event_id == event.id)
                .values(sent_at=sent_at)
            )
            ids[label] = event.id
    return ids


def _left(engine: sa.Engine, column: sa.Column[str]) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(sa.select(column)))


def test_the_outbox_drops_rows_published_before_the_period(
    database_url: str, tmp_path: Path
) -> None:
    outbox = Outbox(outbox_engine(database_url))
    outbox.create()
    ids = _stage(
        outbox,
        {"old": NOW - 8 * DAY, "recent": NOW - 6 * DAY, "unsent": None, "ahead": NOW + 400 * DAY},
    )
    store = _store(_settings(tmp_path, outbox_url=database_url), "outbox verifiers")
    assert store.report().status(NOW) == "exception"
    assert store.enforce(NOW) == "1 published rows deleted"
    assert store.enforce(NOW) == "0 published rows deleted"  # idempotent
    assert _left(outbox.engine, outbox_events.c.event_id) == {
        ids["recent"],
        ids["unsent"],  # never relayed: deleting it would lose the event
        ids["ahead"],  # sent_at is the relay's clock, never the event's: reported below
    }
    report = store.report()
    assert report.oldest is not None and abs(report.oldest - (NOW - 6 * DAY)) < DAY / 24
    assert "in the future" in report.finding(NOW)  # a relay with a broken clock shows up
    outbox.engine.dispose()


def test_dashboard_sessions_over_before_the_period_are_deleted(
    database_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(database_url)
    dashboard_metadata.create_all(engine, tables=[sessions])
    rows = {
        "ended long ago": (NOW - 40 * DAY, NOW - 39 * DAY, NOW - 39 * DAY),
        "expired long ago": (NOW - 45 * DAY, NOW - 44 * DAY, None),
        "ended recently": (NOW - 10 * DAY, NOW - 9 * DAY, NOW - 10 * DAY),
        "live": (NOW - DAY / 24, NOW + DAY / 4, None),
    }
    with engine.begin() as connection:
        for label, (created, expires, ended) in rows.items():
            connection.execute(
                sessions.insert().values(
                    id=label, name="auditor", created_at=created, expires_at=expires, ended_at=ended
                )
            )
    settings = _settings(tmp_path, dashboard={"users_url": database_url})  # type: ignore[arg-type]
    store = _store(settings, "dashboard sessions")
    assert store.report().status(NOW) == "exception"
    assert store.enforce(NOW) == "2 session rows deleted"
    assert _left(engine, sessions.c.id) == {"ended recently", "live"}
    assert store.report().status(NOW) == "within policy"
    engine.dispose()


# -- retention show | apply over a whole data dir -------------------------------------


def _old_and_new_data(settings: Settings) -> None:
    data = settings.data_dir
    lake = settings.lake_path()
    ensure_lake(lake)
    LakeWriter(lake).write_events(
        [sample_event(subject=f"l-{ago}", now=NOW - ago * DAY) for ago in (500, 3)]
    )
    ledger = open_ledger(
        url=settings.ledger_database_url(),
        signing_key_file=data / "keys" / "ledger-signing.pem",
        master_key_file=data / "keys" / "ledger-master.key",
    )
    ledger.append([sample_event(subject="g-old", now=NOW - 500 * DAY)], now=NOW - 500 * DAY)
    ledger.append([sample_event(subject="g-new", now=NOW - DAY)], now=NOW - DAY)
    ledger.engine.dispose()
    outbox = Outbox(outbox_engine(settings.outbox_database_url()))
    outbox.create()
    _stage(outbox, {"old": NOW - 20 * DAY, "recent": NOW - DAY})
    outbox.engine.dispose()


def test_show_reports_exceptions_apply_clears_them(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "data", kafka_broker.bootstrap)
    settings.data_dir.mkdir()
    ensure_pipeline_topics(kafka_broker.bootstrap, settings.topics)
    _old_and_new_data(settings)
    env = {
        "FACTORSTREAM_DATA_DIR": str(settings.data_dir),
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_TOPICS__EVENTS": settings.topics.events,
        "FACTORSTREAM_TOPICS__DLQ": settings.topics.dlq,
        "FACTORSTREAM_TOPICS__LOCKOUTS": settings.topics.lockouts,
        "FACTORSTREAM_TOPICS__ANOMALIES": settings.topics.anomalies,
        "FACTORSTREAM_TOPICS__CHECKPOINTS": settings.topics.checkpoints,
        "FACTORSTREAM_STREAM__APP_ID": settings.stream.app_id,
        "COLUMNS": "200",
    }
    runner = CliRunner()
    before = runner.invoke(app, ["retention", "show"], env=env)
    assert before.exit_code == 1, before.output
    said = " ".join(before.output.split())
    assert "lake" in said and "is older than the policy allows" in said
    applied = runner.invoke(app, ["retention", "apply"], env=env)
    assert applied.exit_code == 0, applied.output
    said = " ".join(applied.output.split())
    assert "lake: 2 partitions deleted" in said  # the old day of events and verifications
    assert "ledger personal data: 1 data keys destroyed" in said
    assert "outbox verifiers: 1 published rows deleted" in said
    assert "topic configs set" in said
    after = runner.invoke(app, ["retention", "show"], env=env)
    assert after.exit_code == 0, after.output
    assert "older than the policy" not in after.output
    assert [s.name for s in stores(settings) if s.report().status(NOW) == "exception"] == []


def test_topics_created_by_the_operator_start_within_policy(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """`kafka up` and `kafka topics` create the topics with the policy's configs: the
    worker then finds nothing to set."""
    settings = _settings(tmp_path, kafka_broker.bootstrap)
    created = ensure_pipeline_topics(
        kafka_broker.bootstrap, settings.topics, retention=topic_retention_configs(settings)
    )
    assert len(created) == 5
    assert align_topic_retention(settings, apply=False) == []
    found = topic_configs(kafka_broker.bootstrap, [settings.topics.events])
    assert found[settings.topics.events]["message.timestamp.type"] == "LogAppendTime"

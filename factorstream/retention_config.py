"""Retention, composed: the settings' periods as the values each store's owner takes, what
each store holds now (for ``retention show`` and the GDPR pack), and one enforcement pass
over every store (``retention apply``).

Who enforces what, in normal running (docs/retention.md):

* topics: the worker sets ``retention.ms`` (and ``segment.ms``, so that Kafka deletes
  within a day of it) on the pipeline's topics as it starts, and reports drift;
* lake: the lake sink's compaction timer deletes partitions outside the period;
* ledger: the ledger sink's hourly timer destroys the data keys of old entries;
* outboxes: each relay prunes its published rows hourly;
* dashboard sessions: the dashboard deletes rows of sessions over, at start and at
  sign-ins (hourly at most).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from compliance.retention import StoreRetention, retention_rows
from factorstream.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
TOPIC_SLACK = timedelta(days=1, minutes=10)
"""Kafka deletes a whole segment once its newest record is past ``retention.ms``; segments
roll daily here (``segment.ms``) and the broker checks every 5 minutes."""
HOURLY_SLACK = timedelta(hours=1, minutes=5)
LAKE_SLACK = timedelta(days=1, minutes=10)
"""A lake partition is a day; the compaction timer runs every 5 minutes."""


def days(value: float | None) -> timedelta | None:
    """A period of the settings in days as a timedelta (``None``: kept for ever)."""
    return None if value is None else timedelta(days=value)


def _ms(value: float | None) -> int:
    return -1 if value is None else round(value * DAY_MS)


def topic_days(settings: Settings) -> dict[str, float | None]:
    """Each topic the pipeline keeps records in, with its period in days: the raw events
    and the worker's copies of them (enriched, re-keyed by subject, IP and tenant), the dead-letter
    topics, the derived topics and the checkpoints. (The worker's table changelogs are
    compacted state, Faust's, and left alone.)"""
    from streams.app import INGESTED_SUFFIX, REKEYED_INFIX
    from streams.stages import BY_IP, BY_SUBJECT, BY_TENANT

    policy, topics, app_id = settings.retention, settings.topics, settings.stream.app_id
    return {
        topics.events: policy.events_topic_days,
        f"{app_id}-{INGESTED_SUFFIX}": policy.events_topic_days,
        f"{app_id}-{REKEYED_INFIX}{BY_SUBJECT}": policy.events_topic_days,
        f"{app_id}-{REKEYED_INFIX}{BY_IP}": policy.events_topic_days,
        f"{app_id}-{REKEYED_INFIX}{BY_TENANT}": policy.events_topic_days,
        topics.dlq: policy.dlq_topic_days,
        settings.alerts.dead_letter_topic: policy.dlq_topic_days,
        topics.lockouts: policy.derived_topics_days,
        topics.anomalies: policy.derived_topics_days,
        topics.checkpoints: policy.checkpoints_topic_days,
    }


def topic_retention_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """The retention configs each topic must have: ``retention.ms`` (-1: kept) and, where
    it is bounded, ``segment.ms`` of at most a day."""
    wanted: dict[str, dict[str, str]] = {}
    for topic, period in topic_days(settings).items():
        configs = {"retention.ms": str(_ms(period))}
        if period is not None:
            configs["segment.ms"] = str(min(_ms(period), DAY_MS))
        wanted[topic] = configs
    return wanted


def align_topic_retention(settings: Settings, *, apply: bool = True) -> list[str]:
    """Compare the existing topics' retention with the settings, set it right when
    ``apply``; one line per config that differed (logged as a warning)."""
    from factorstream.topic_config import align_topic_configs

    found = align_topic_configs(settings.kafka(), topic_retention_configs(settings), apply=apply)
    lines = [
        f"topic {d.topic}: {d.config} was {d.found or 'the broker default'}, "
        f"{'set to' if apply else 'the settings want'} {d.wanted}"
        for d in found
    ]
    for line in lines:
        log.warning("retention drift: %s", line)
    return lines


# -- what each store holds ----------------------------------------------------------------


def _sqlite_missing(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Store:
    """One store: how to read what it holds, and how to enforce its period once."""

    name: str
    holds: str
    keep: timedelta | None
    slack: timedelta
    enforced_by: str
    inspect: Callable[[], tuple[datetime | None, datetime | None]]
    """(oldest, newest) of what it holds now; raises when it cannot be read."""
    enforce: Callable[[datetime], str]
    """One enforcement pass at ``now``: what it did, in words."""

    def report(self) -> StoreRetention:
        try:
            oldest, newest = self.inspect()
        except Exception as error:  # a store away: reported unknown, never as met
            return StoreRetention(
                self.name, self.holds, self.keep, self.slack, self.enforced_by,
                readable=False, note=str(error).splitlines()[0][:200],
            )  # fmt: skip
        return StoreRetention(
            self.name, self.holds, self.keep, self.slack, self.enforced_by, oldest, newest
        )


def stores(settings: Settings, *, kafka_timeout: float = 10.0) -> list[Store]:
    """Every store of the deployment with its policy (topics, lake, ledger, outboxes,
    dashboard sessions)."""
    return [
        *_topic_stores(settings, kafka_timeout),
        _lake_store(settings),
        _ledger_store(settings),
        *_outbox_stores(settings),
        _sessions_store(settings),
    ]


def retention_report(
    settings: Settings, now: datetime, *, kafka_timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Each store's policy, the oldest data it holds now and whether that is within the
    policy (``retention show``, the GDPR pack's ``retention.json``)."""
    return retention_rows([s.report() for s in stores(settings, kafka_timeout=kafka_timeout)], now)


def _topic_stores(settings: Settings, timeout: float) -> list[Store]:
    from factorstream.topic_config import oldest_record_times

    oldest: dict[str, datetime | None] = {}
    failed: list[Exception] = []

    def read(topic: str) -> tuple[datetime | None, datetime | None]:
        if not oldest and not failed:  # one consumer for every topic, asked once
            try:
                oldest.update(
                    oldest_record_times(settings.kafka(), topic_days(settings), timeout=timeout)
                )
            except Exception as error:
                failed.append(error)
        if failed:
            raise failed[0]
        return oldest.get(topic), None

    def enforce(_now: datetime) -> str:
        lines = align_topic_retention(settings, apply=True)
        return f"{len(lines)} topic configs set" if lines else "topic configs as wanted"

    found = []
    for topic, period in topic_days(settings).items():
        found.append(
            Store(
                f"topic {topic}",
                "events (personal data in clear)" if period is not None else "signed checkpoints",
                days(period),
                TOPIC_SLACK,
                "worker sets retention.ms",
                lambda topic=topic: read(topic),  # type: ignore[misc]
                enforce,
            )
        )
    # one enforcement pass sets every topic: only the first store carries it
    return [found[0], *(replace(store, enforce=_nothing) for store in found[1:])]


def _nothing(_now: datetime) -> str:
    return "(set with the first topic)"


def _lake_store(settings: Settings) -> Store:
    from analytics.retention import date_range, expire
    from analytics.sink import FUTURE_SLACK

    lake, keep = settings.lake_path(), days(settings.retention.lake_days)

    def inspect() -> tuple[datetime | None, datetime | None]:
        found = date_range(lake)
        if found is None:
            return None, None
        return _day_start(found[0]), _day_start(found[1])

    def enforce(now: datetime) -> str:
        if keep is None:
            return "kept"
        done = expire(lake, keep_from=(now - keep).date(), keep_until=(now + FUTURE_SLACK).date())
        return f"{len(done)} partitions deleted"

    return Store(
        "lake", "event rows (IP, place, device)", keep, LAKE_SLACK,
        "lake sink (compaction timer)", inspect, enforce,
    )  # fmt: skip


@contextlib.contextmanager
def _ledger(settings: Settings) -> Iterator[object]:
    from audit.ledger import open_ledger

    url = settings.ledger_database_url()
    if _sqlite_missing(url):
        yield None
        return
    ledger = open_ledger(
        url=url, signing_key_file=None, master_key_file=None, create_keys=False, migrate=False
    )
    try:
        yield ledger
    finally:
        ledger.engine.dispose()


def _ledger_store(settings: Settings) -> Store:
    from audit.ledger import KEY_ROTATION, Ledger

    keep = days(settings.retention.ledger_personal_days)

    def inspect() -> tuple[datetime | None, datetime | None]:
        with _ledger(settings) as ledger:
            if not isinstance(ledger, Ledger):
                return None, None
            return ledger.oldest_readable_key(), None

    def enforce(now: datetime) -> str:
        if keep is None:
            return "kept"
        with _ledger(settings) as ledger:
            if not isinstance(ledger, Ledger):
                return "no ledger"
            return f"{ledger.shred_older_than(keep, now=now)} data keys destroyed"

    return Store(
        "ledger personal data",
        "personal fields of entries, sealed per subject (oldest: its live data key)",
        keep, KEY_ROTATION + HOURLY_SLACK, "ledger sink (hourly)", inspect, enforce,
    )  # fmt: skip


def _outbox_stores(settings: Settings) -> list[Store]:
    from factorstream.cli.relay import outbox_urls
    from verifiers.publish import Outbox, outbox_engine

    keep = days(settings.retention.outbox_sent_days)

    def store(url: str, name: str) -> Store:
        @contextlib.contextmanager
        def opened() -> Iterator[Outbox | None]:
            if _sqlite_missing(url):
                yield None
                return
            engine = outbox_engine(url)
            try:
                yield Outbox(engine)
            finally:
                engine.dispose()

        def inspect() -> tuple[datetime | None, datetime | None]:
            with opened() as outbox:
                return (None, None) if outbox is None else outbox.sent_range()

        def enforce(now: datetime) -> str:
            if keep is None:
                return "kept"
            with opened() as outbox:
                if outbox is None:
                    return "no outbox"
                return f"{outbox.prune(sent_before=now - keep)} published rows deleted"

        return Store(
            f"outbox {name}", "published events (IP, user agent)", keep, HOURLY_SLACK,
            "relay (hourly)", inspect, enforce,
        )  # fmt: skip

    verifiers = settings.outbox_database_url()
    return [
        store(url, "verifiers" if url == verifiers else "dashboard")
        for url in outbox_urls(settings, existing=True)
    ]


def _sessions_store(settings: Settings) -> Store:
    import sqlalchemy as sa

    url = settings.dashboard_database_url()
    keep = days(settings.retention.dashboard_sessions_days)
    lifetime = timedelta(seconds=settings.dashboard.session_lifetime_s)

    @contextlib.contextmanager
    def engine() -> Iterator[sa.Engine | None]:
        if _sqlite_missing(url):
            yield None
            return
        opened = sa.create_engine(url)
        try:
            yield opened if sa.inspect(opened).has_table("dashboard_sessions") else None
        finally:
            opened.dispose()

    def inspect() -> tuple[datetime | None, datetime | None]:
        from dashboard.users import oldest_session

        with engine() as found:
            return (None if found is None else oldest_session(found)), None

    def enforce(now: datetime) -> str:
        from dashboard.users import expire_sessions

        if keep is None:
            return "kept"
        with engine() as found:
            if found is None:
                return "no sessions"
            return f"{expire_sessions(found, ended_before=now - keep)} session rows deleted"

    return Store(
        "dashboard sessions", "who signed in when (the session id's hash)", keep,
        lifetime + HOURLY_SLACK, "dashboard (at start and sign-ins, hourly)", inspect, enforce,
    )  # fmt: skip

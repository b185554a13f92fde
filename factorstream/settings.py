"""Typed settings, read once at the edge (``main()``) and passed down as values.

Every setting can be given as an environment variable with the prefix ``FACTORSTREAM_``;
nested groups use ``__`` (``FACTORSTREAM_TOPICS__EVENTS=mfa.events``). The README's
settings table is generated from this module and checked by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.fields import PolicyTier

KAFKA_VERSION = "4.1.1"
"""Apache Kafka version provisioned by ``factorstream kafka up`` (pinned)."""


class TopicSettings(BaseModel):
    """Kafka topic names and partition counts (created on start)."""

    events: str = Field("mfa.events", description="Raw MFA events; key = partitionkey.")
    dlq: str = Field("mfa.events.dlq", description="Events that failed to decode, with reason.")
    lockouts: str = Field("mfa.lockouts", description="Derived lockout.* events.")
    anomalies: str = Field("mfa.anomalies", description="Derived risk.detected events.")
    checkpoints: str = Field(
        "mfa.audit.checkpoints", description="Signed ledger checkpoints (a copy off the database)."
    )
    events_partitions: int = Field(6, ge=1, description="Partitions of the events topic.")
    derived_partitions: int = Field(3, ge=1, description="Partitions of the derived topics.")

    def partitions(self) -> dict[str, int]:
        """Every topic the pipeline needs, with its partition count."""
        return {
            self.events: self.events_partitions,
            self.dlq: self.derived_partitions,
            self.lockouts: self.derived_partitions,
            self.anomalies: self.derived_partitions,
            self.checkpoints: 1,
        }


class RelaySettings(BaseModel):
    """The outbox relay that publishes a service's events to Kafka."""

    batch_size: int = Field(2000, ge=1, description="Outbox rows claimed per relay round.")
    poll_interval_s: float = Field(0.2, gt=0, description="Idle wait between empty rounds.")
    backoff_initial_s: float = Field(0.5, gt=0, description="First wait after a broker error.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest wait between retries.")
    linger_ms: int = Field(20, ge=0, description="Producer linger (batching) in milliseconds.")


class StreamSettings(BaseModel):
    """The stream worker (``factorstream worker``, a Faust app)."""

    app_id: str = Field(
        "factorstream",
        min_length=1,
        description="Faust app id: the consumer group, and the prefix of the worker's "
        "internal topics (`<app_id>-events-ingested`, `<app_id>-<table>-changelog`).",
    )
    store: str = Field(
        "rocksdb://",
        description="Table store: `rocksdb://` (on disk in `<data_dir>/streams`, via "
        "rocksdict) or `memory://` (rebuilt from the changelog topics on every start).",
    )
    web_bind: str = Field(
        "127.0.0.1", description="Interface the worker's web server (the lockout API) binds."
    )
    web_host: str = Field(
        "127.0.0.1",
        description="Host name other workers use to reach this one (table routing of "
        "lockout API requests).",
    )
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the lockout API.")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="`exactly_once`: Kafka transactions tie table writes, derived events "
        "and offsets together (a crash neither loses nor double-counts an event) at the "
        "cost of read_committed hops that wait for commit_interval_s. `at_least_once`: no "
        "wait, but a crash may re-apply the events processed since the last commit.",
    )
    commit_interval_s: float = Field(
        2.8,
        gt=0,
        description="How often offsets (and, exactly once, transactions) are committed.",
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition that other workers keep up to "
        "date, so a partition moving to one of them needs no full table recovery.",
    )
    dedupe_window_s: float = Field(
        3600.0,
        gt=0,
        description="An event whose id was seen within this many seconds (windows by event "
        "time; kept at least this long in wall-clock time) is dropped as a duplicate.",
    )
    default_tier: PolicyTier = Field(
        PolicyTier.CUSTOMER,
        description="Policy tier of the lockout fold for events that carry no `data.policy_tier`.",
    )


class Settings(BaseSettings):
    """factorstream settings. Environment prefix ``FACTORSTREAM_``."""

    model_config = SettingsConfigDict(
        env_prefix="FACTORSTREAM_", env_nested_delimiter="__", extra="forbid"
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    data_dir: Path = Field(
        Path(".factorstream"), description="Local state: broker data, outbox, ledger, lake."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "factorstream",
        description="Downloaded artefacts (the Apache Kafka jars), shared between data dirs.",
    )
    kafka_port: int = Field(9092, ge=1, le=65535, description="Port of `factorstream kafka up`.")
    outbox_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the outbox database (default: SQLite in data_dir).",
    )
    topics: TopicSettings = Field(default_factory=TopicSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)

    def outbox_database_url(self) -> str:
        return self.outbox_url or f"sqlite:///{(self.data_dir / 'outbox.db').resolve()}"


def load_settings() -> Settings:
    """Read settings from the environment; call once, in ``main()``."""
    return Settings()

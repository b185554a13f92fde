"""Typed settings, read once at the edge (``main()``) and passed down as values.

Every setting can be given as an environment variable with the prefix ``FACTORSTREAM_``;
nested groups use ``__`` (``FACTORSTREAM_TOPICS__EVENTS=mfa.events``). The settings
table in ``docs/settings.md`` is generated from this module and checked by a test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.fields import PolicyTier
from verifiers.kafka_connection import KafkaConnection, SaslMechanism, SecurityProtocol

KAFKA_VERSION = "4.1.1"
"""Apache Kafka version provisioned by ``factorstream kafka up`` (pinned)."""


class KafkaSecuritySettings(BaseModel):
    """How every Kafka client the project runs (worker, sinks, relay, CLI, benchmarks)
    authenticates to the brokers and checks them: SASL/SCRAM and TLS."""

    protocol: SecurityProtocol = Field(
        "PLAINTEXT",
        description="Kafka `security.protocol` of every client: `PLAINTEXT` (the local "
        "default: no authentication, no encryption), `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` "
        "(SCRAM over TLS: what a shared cluster needs).",
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="SASL mechanism: `SCRAM-SHA-512` or `SCRAM-SHA-256`."
    )
    username: str | None = Field(
        None, description="SASL user (the Kafka principal `User:<name>` that ACLs name)."
    )
    password: SecretStr | None = Field(
        None, description="SASL password (never printed; passed to child processes)."
    )
    ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) the brokers' certificates must be signed by; "
        "unset: the system's CAs. Host names are always checked.",
    )
    cert_file: Path | None = Field(
        None, description="Client certificate (PEM), for brokers that require one (mTLS)."
    )
    key_file: Path | None = Field(None, description="Private key (PEM) of `cert_file`.")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        self.connection("127.0.0.1:9092")  # raises ValueError naming what is missing
        return self

    def connection(self, bootstrap: str) -> KafkaConnection:
        """The connection every client of the project uses, to ``bootstrap``."""
        return KafkaConnection(
            bootstrap=bootstrap,
            protocol=self.protocol,
            sasl_mechanism=self.sasl_mechanism,
            username=self.username,
            password=self.password.get_secret_value() if self.password is not None else None,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
        )


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

    @classmethod
    def under(cls, prefix: str) -> TopicSettings:
        """The pipeline's topics named ``<prefix>.events``, ``<prefix>.dlq``, … (a test's or a
        benchmark's own set), default partition counts."""
        return cls(
            events=f"{prefix}.events",
            dlq=f"{prefix}.dlq",
            lockouts=f"{prefix}.lockouts",
            anomalies=f"{prefix}.anomalies",
            checkpoints=f"{prefix}.checkpoints",
        )

    def configs(self) -> dict[str, dict[str, str]]:
        """Topic configurations set when the pipeline creates its topics: the events topic
        keeps the broker's append time as each record's timestamp, which ingest measures
        an event's own time against (``stream.max_ahead_s``); a producer cannot set it."""
        return {self.events: {"message.timestamp.type": "LogAppendTime"}}


class RelaySettings(BaseModel):
    """The outbox relay that publishes a service's events to Kafka."""

    batch_size: int = Field(2000, ge=1, description="Outbox rows claimed per relay round.")
    poll_interval_s: float = Field(0.2, gt=0, description="Idle wait between empty rounds.")
    backoff_initial_s: float = Field(0.5, gt=0, description="First wait after a broker error.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest wait between retries.")
    linger_ms: int = Field(20, ge=0, description="Producer linger (batching) in milliseconds.")
    probes_host: str = Field(
        "127.0.0.1",
        description="Interface of the process's `/health`, `/ready` and `/metrics` "
        "(docs/metrics.md).",
    )
    probes_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the process's `/health`, `/ready` and `/metrics` "
        "(docs/metrics.md); unset: not served.",
    )


class EnrichSettings(BaseModel):
    """Geo/ASN enrichment of ingested events (``streams/enrich.py``), best effort."""

    enabled: bool = Field(
        True,
        description="Complete each event's `client.geo` (and a push `responder`'s) from the "
        "IP address before the folds see it: country from the bundled offline data "
        "(geoip2fast, GeoLite2 of 2024), coordinates from `mmdb_path` or else the country "
        "centroid (`geo.source` = `centroid`). Values the service sent are never replaced; "
        "private and reserved addresses are left alone. `false` forwards events as they came.",
    )
    mmdb_path: Path | None = Field(
        None,
        description="A MaxMind-format city database (`.mmdb`: GeoIP2/GeoLite2 City or "
        "compatible) for country, region, city and coordinates (`geo.source` = `mmdb`) of "
        "public IPs; a record that places an IP only in its country gets the centroid. "
        "Unset: coordinates are country centroids.",
    )
    asn_mmdb_path: Path | None = Field(
        None,
        description="A MaxMind-format ASN database (`.mmdb`: GeoLite2 ASN) for `geo.asn`. The "
        "bundled offline data names a network's owner but has no AS number, so unset (and "
        "without an AS number in `mmdb_path`) `asn` stays as the service sent it.",
    )
    cache_size: int = Field(
        16384,
        ge=0,
        description="Lookups kept in memory, by IP address and the geo an event came with "
        "(about 300 bytes each; least recently used go first): the events of one sign-in "
        "share an IP, so most cost one lookup. 0 turns the cache off.",
    )


class StreamSettings(BaseModel):
    """The stream worker (``factorstream worker``, a Faust app)."""

    app_id: str = Field(
        "factorstream",
        min_length=1,
        description="Faust app id: the consumer group of the folds, and the prefix of the "
        "worker's internal topics (`<app_id>-events-ingested`, `<app_id>-<table>-changelog`).",
    )
    store: str = Field(
        "rocksdb://",
        description="Table store: `rocksdb://` (on disk in `<data_dir>/streams`, via "
        "rocksdict) or `memory://` (rebuilt from the changelog topics on every start).",
    )
    roles: tuple[Literal["folds", "ledger", "lake"], ...] = Field(
        ("folds", "ledger", "lake"),
        min_length=1,
        description="What this worker process runs: `folds` (ingest, every fold, the lockout "
        "API; consumer group `<app_id>`), `ledger`, `lake` (the sinks). A worker without "
        "`folds` runs its sinks in consumer group `<app_id>-<roles>`, without the lockout API. "
        "`factorstream sink ledger|lake` runs a sink in a process of its own without Faust "
        "(group `<app_id>-ledger` or `-lake`; do not run it beside a worker with that role "
        'alone: one group, two protocols). In the environment a JSON list: `["folds"]`.',
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
    probes_host: str = Field(
        "127.0.0.1",
        description="Interface of `/health`, `/ready` and `/metrics` of a process without "
        "the `folds` role: a worker of sinks only, `factorstream sink ledger|lake` "
        "(docs/metrics.md). A worker with `folds` serves them beside the lockout API.",
    )
    probes_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of `/health`, `/ready` and `/metrics` of a process without the "
        "`folds` role (docs/metrics.md); unset: not served. Each process on one host needs "
        "its own.",
    )
    api_token_file: Path | None = Field(
        None,
        description="File holding the bearer token the lockout API requires of every request "
        "(`Authorization: Bearer …`). Without one the API answers anyone who reaches it, so "
        "the worker then refuses to bind anything but a loopback address.",
    )
    commit_interval_s: float = Field(
        2.8,
        gt=0,
        description="How often offsets are committed; before each commit the worker writes "
        "the state every batch since the last one changed (each changed key once).",
    )
    session_timeout_s: float = Field(
        15.0,
        ge=6,
        le=300,
        description="A worker or sink process that stops heartbeating (killed, frozen, cut "
        "off) keeps its partitions this long before the group moves them to another member: "
        "the failover time after a crash. Heartbeats go every third of it. Within the "
        "broker's `group.min.session.timeout.ms` and `group.max.session.timeout.ms` "
        "(6 s and 30 min by default).",
    )
    stall_s: float = Field(
        30.0,
        gt=0,
        description="A stall of the worker's consumer that lasts this long with nothing in "
        "flight is repaired, with a warning in the log: a partition whose next commit waits "
        "at a record that never reached the folds, or never positioned, is read again from "
        "that record; records left unread are fetched again, then the group is rejoined; a "
        "rebalance without progress is restarted (docs/stream-engine.md, the stall watch).",
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
        description="An event whose id its subject already had, within this many seconds of "
        "event time before the subject's newest event, is dropped as a duplicate (a relay's "
        "re-send carries the same id and time).",
    )
    max_poll_records: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Records one fetch hands the engine at most (all partitions together): "
        "larger batches cost less per event, smaller ones keep the worker responsive (a batch "
        "is processed without a pause; the lockout API waits for it).",
    )
    fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        le=10_000,
        description="How long the broker may hold a fetch of the worker's consumer while none "
        "of its partitions has new records. The consumer sends each broker one fetch at a "
        "time, for the partitions it has nothing buffered of: a busy partition drained "
        "meanwhile waits behind a fetch held for quiet ones (Faust sets 1,500 ms; "
        "docs/faust-consumer-faults.md). Lower: less waiting, more empty fetches when idle "
        "(an idle worker here: about 5 % of a core at 20 ms, 0.5 % at 1,500 ms).",
    )
    cache_keys: int = Field(
        100_000,
        ge=100,
        description="Keys each stage (subjects, IPs, tenants) keeps as live objects in memory "
        "in front of its table; the least recently used beyond it are read again on demand.",
    )
    max_ahead_s: float = Field(
        300.0,
        gt=0,
        description="An event dated more than this many seconds after its record's timestamp "
        "on the events topic (the broker's append time) is refused to the dead-letter topic: "
        "a future-dated failure or erasure would otherwise act until its own time.",
    )
    default_tier: PolicyTier = Field(
        PolicyTier.CUSTOMER,
        description="Policy tier of the lockout fold for events that carry no `data.policy_tier`.",
    )
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)


# -- detections and per-IP throttling (streams/folds) ------------------------------------


class DetectionSettings(BaseModel):
    """Thresholds of the risk detections (`risk.detected` to the anomalies topic).

    Read into ``streams.folds.DetectionThresholds`` (whose docstrings say each rule
    exactly); a window counts events within it, inclusive, by event time.
    """

    cooldown_s: float = Field(
        3600.0,
        gt=0,
        le=90 * 86400,
        description="Quiet time after a detection fired for a key (subject, IP, tenant).",
    )
    travel_max_speed_kmh: float = Field(
        900.0,
        gt=0,
        description="Impossible travel: faster than this between two successful sign-ins.",
    )
    travel_min_distance_km: float = Field(
        100.0, ge=0, description="Impossible travel: shorter hops are geolocation jitter."
    )
    learning_sign_ins: int = Field(
        10,
        ge=1,
        le=10_000,
        description="New country / new device: learning ends after this many successful "
        "sign-ins of a subject …",
    )
    learning_period_days: float = Field(
        14.0, gt=0, le=90, description="… or this many days after the first, whichever is first."
    )
    push_fatigue_count: int = Field(
        5, ge=1, le=10_000, description="Push fatigue: rejected or expired pushes …"
    )
    push_fatigue_window_s: float = Field(
        600.0, gt=0, le=86400, description="… within this many seconds."
    )
    spray_min_subjects: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Password spray: distinct subjects with a failed login from one IP …",
    )
    spray_window_s: float = Field(3600.0, gt=0, le=86400, description="… within this many seconds.")
    otp_guess_count: int = Field(
        10, ge=1, le=10_000, description="OTP guessing: wrong codes for one subject …"
    )
    otp_guess_window_s: float = Field(
        3600.0, gt=0, le=86400, description="… within this many seconds."
    )
    recovery_failure_count: int = Field(
        3, ge=1, le=10_000, description="Recovery-code abuse: failed recovery codes …"
    )
    recovery_failure_window_s: float = Field(
        3600.0, gt=0, le=86400, description="… within this many seconds."
    )
    recovery_success_count: int = Field(
        3, ge=1, le=10_000, description="Recovery-code abuse: recovery codes used …"
    )
    recovery_success_window_s: float = Field(
        86400.0, gt=0, le=90 * 86400, description="… within this many seconds."
    )
    sms_window_s: float = Field(
        600.0, gt=0, le=86400, description="SMS pumping: the burst window of both rules."
    )
    sms_unusual_count: int = Field(
        5,
        ge=1,
        le=10_000,
        description="SMS pumping: codes to unusual or premium countries of a tenant in the window.",
    )
    sms_burst_count: int = Field(
        100,
        ge=1,
        le=10_000,
        description="SMS pumping: codes of a tenant in the window (tune to the largest peak).",
    )
    sms_premium_countries: list[str] = Field(
        default_factory=list,
        description='SMS pumping: destinations always unusual, as JSON (`["CU", "LV"]`).',
    )
    reset_window_s: float = Field(
        86400.0,
        gt=0,
        le=90 * 86400,
        description="Factor reset or removal this soon after a risky sign-in fires.",
    )
    anonymous_networks_file: Path | None = Field(
        None,
        description="Anonymous IP: a file of IPs and CIDR networks (Tor exits, VPNs, proxies), "
        "one a line, `#` comments; its name (without suffix) is the evidence's `list`.",
    )
    malicious_networks_file: Path | None = Field(
        None,
        description="Malicious IP: a file of IPs and CIDR networks (blocklists), same format.",
    )


class IpBlockSettings(BaseModel):
    """Per-IP throttling: `ip.block.applied|released` to the lockouts topic."""

    min_subjects: int = Field(
        20,
        ge=2,
        le=10_000,
        description="An IP with failed sign-ins against this many distinct subjects …",
    )
    window_s: float = Field(900.0, gt=0, le=86400, description="… within this many seconds …")
    duration_s: float = Field(
        900.0, gt=0, le=90 * 86400, description="… is blocked for this many seconds."
    )
    exempt_networks_file: Path | None = Field(
        None,
        description="A file of IPs and CIDR networks never blocked (NAT gateways many people "
        "sign in through), one a line, `#` comments.",
    )


# -- compliance ledger (audit/) ------------------------------------------------------------


class ControlSettings(BaseModel):
    """Signed control events: erasure, administrators' overrides, temporary access
    (``schemas/signing.py``)."""

    signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) with which `audit erase` and `users unlock` "
        "sign the control events they emit (default: `keys/control-signing.pem` in data_dir, "
        "created on first use, mode 0600); `factorstream audit keys control` prints its "
        "public key.",
    )
    trusted_key_files: list[Path] = Field(
        default_factory=list,
        description="Public keys (PEM) whose signatures the worker and `replay` accept on "
        "control events; a control event signed by any other key, or unsigned, goes to the "
        "dead-letter topic. Empty: the public key of `signing_key_file` (one machine). Set it "
        "wherever the worker does not share the operators' data_dir.",
    )


class LedgerSettings(BaseModel):
    """The compliance ledger: a Merkle tree over every event, with signed checkpoints."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger database (default: SQLite `ledger.db` in "
        "data_dir; PostgreSQL in production).",
    )
    checkpoint_every: int = Field(
        1000, ge=1, description="Sign a checkpoint after this many new entries …"
    )
    checkpoint_interval_s: float = Field(
        60.0, gt=0, description="… or this many seconds after the last one, whichever is first."
    )
    signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs checkpoints (default: "
        "`keys/ledger-signing.pem` in data_dir, created on first use). Its key id is the "
        "SHA-256 of the public key; old public keys stay in the database for verification.",
    )
    master_key_file: Path | None = Field(
        None,
        description="32-byte master key (base64) that wraps the per-subject data keys of "
        "personal data (default: `keys/ledger-master.key` in data_dir, created on first use).",
    )
    public_key_files: list[Path] = Field(
        [],
        description="Public keys (PEM, e.g. from `audit keys show` kept elsewhere) that "
        "checkpoints must be signed by: `audit verify` and the dashboard pin them, so a "
        "ledger re-signed with another key fails. Empty: the database's own keys are trusted.",
    )
    batch_size: int = Field(
        2000,
        ge=1,
        description="Events the ledger sink appends per transaction at most (it appends what "
        "each fetch brings, in transactions of at most this many).",
    )


# -- lake and SOC access (analytics/) ------------------------------------------------------


class LakeSettings(BaseModel):
    """The Parquet lake (hive-partitioned by date) and the DuckDB views over it."""

    path: Path | None = Field(None, description="Root of the lake (default: `lake` in data_dir).")
    batch_rows: int = Field(
        5000, ge=1, description="Rows the lake sink writes per Parquet file at most."
    )
    compact_min_files: int = Field(
        8, ge=2, description="Compaction merges a date partition once it has this many files."
    )


# -- retention (every store, docs/retention.md) --------------------------------------------

LAKE_MIN_DAYS = 397
"""The lake keeps at least a calendar year and a month: the longest evidence period
(``2026``) can still be packed in the January after it."""


STORE_PERIODS: tuple[str, ...] = (
    "events_topic_days",
    "dlq_topic_days",
    "derived_topics_days",
    "checkpoints_topic_days",
    "lake_days",
    "ledger_personal_days",
    "outbox_sent_days",
    "dashboard_sessions_days",
)
"""The settings of :class:`RetentionSettings` that are a store's period."""


class RetentionSettings(BaseModel):
    """How long each store keeps what it holds (docs/retention.md). Each is enforced by
    the process that owns the store; `factorstream retention show|apply` reports and runs
    them, the GDPR evidence pack lists them with the oldest data found. `forever`: kept
    for ever. Shorter than a day (the lake: than `LAKE_MIN_DAYS`) is refused unless
    `allow_short` is set: a typo must not delete a store's history."""

    events_topic_days: float | None = Field(
        7.0,
        gt=0,
        description="Kafka `retention.ms` of the events topic and the worker's enriched copy "
        "(`<app_id>-events-ingested`): raw events with IPs and user agents in clear. A week "
        "lets the ledger and lake sinks catch up after an outage and `replay` re-read it.",
    )
    dlq_topic_days: float | None = Field(
        14.0,
        gt=0,
        description="`retention.ms` of the dead-letter topic: two weeks to look at a refused "
        "event and replay it.",
    )
    derived_topics_days: float | None = Field(
        7.0,
        gt=0,
        description="`retention.ms` of the lockouts and anomalies topics (the sinks and alerts "
        "read them within seconds; the ledger keeps them).",
    )
    checkpoints_topic_days: float | None = Field(
        None,
        gt=0,
        description="`retention.ms` of the checkpoints topic: unset (kept), it is the copy of "
        "the signed checkpoints off the database and holds no personal data.",
    )
    lake_days: float | None = Field(
        400.0,
        gt=0,
        description="Lake date partitions older than this (by event date) are deleted by the "
        "lake sink's compaction timer, and so are partitions dated more than a day ahead. At "
        "least 397 days: a calendar year's evidence can be packed in the month after it.",
    )
    ledger_personal_days: float | None = Field(
        400.0,
        gt=0,
        description="The personal fields of ledger entries older than this are crypto-shredded "
        "(their subject's data key of that time destroyed, as erasure does; entries, hashes and "
        "proofs stay) by the ledger sink, within 30 days after (a subject's data key seals "
        "new entries for 30 days, then a new one is made: `audit.ledger.KEY_ROTATION`).",
    )
    outbox_sent_days: float | None = Field(
        7.0,
        gt=0,
        description="Outbox rows (the verifiers' or MFA service's, the dashboard's) published "
        "longer ago than this are deleted by the relay (hourly): they hold IP addresses and "
        "user agents that the topic, the ledger and the lake already have. Unsent rows are "
        "never deleted.",
    )
    dashboard_sessions_days: float | None = Field(
        30.0,
        gt=0,
        description="Dashboard session rows (who signed in when, from the hash of the session "
        "id) ended or expired longer ago than this are deleted by the dashboard (hourly).",
    )
    allow_short: bool = Field(
        False,
        description="Accept periods shorter than a day (the lake: shorter than 397 days): "
        "for tests and deliberate choices only.",
    )

    @field_validator(*STORE_PERIODS, mode="before")
    @classmethod
    def _kept(cls, value: object) -> object:
        """``null`` or ``none`` (in the environment: a string) means kept for ever."""
        if isinstance(value, str) and value.strip().lower() in ("null", "none", "forever"):
            return None
        return value

    @model_validator(mode="after")
    def _not_too_short(self) -> RetentionSettings:
        if self.allow_short:
            return self
        short = [
            f"retention.{name} = {days:g} days (at least 1)"
            for name, days in self.periods().items()
            if name != "lake_days" and days is not None and days < 1
        ]
        if self.lake_days is not None and self.lake_days < LAKE_MIN_DAYS:
            short.append(
                f"retention.lake_days = {self.lake_days:g} days (at least {LAKE_MIN_DAYS}: "
                "a year's evidence pack reads the lake)"
            )
        if short:
            raise ValueError(
                f"retention shorter than allowed: {'; '.join(short)}; set retention.allow_short "
                "= true to confirm"
            )
        return self

    def periods(self) -> dict[str, float | None]:
        """Every period of the policy by setting name (days; ``None``: kept)."""
        return {name: getattr(self, name) for name in STORE_PERIODS}


# -- dashboard (dashboard/) -----------------------------------------------------------------


class DashboardSettings(BaseModel):
    """The Dash dashboard for auditors and SOC analysts."""

    host: str = Field("127.0.0.1", description="Interface the dashboard binds.")
    port: int = Field(8050, ge=1, le=65535, description="Port of the dashboard.")
    users_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the dashboard users' database (default: SQLite "
        "`dashboard.db` in data_dir).",
    )
    session_secret_file: Path | None = Field(
        None,
        description="Secret that signs session cookies (default: `keys/dashboard-session.key` "
        "in data_dir, created on first use).",
    )
    secrets_key_file: Path | None = Field(
        None,
        description="Key that encrypts the users' TOTP secrets in the users' database "
        "(default: `keys/dashboard-secrets.key` in data_dir, created on first use, mode 0600).",
    )
    session_lifetime_s: float = Field(
        8 * 3600.0, gt=0, description="A session ends this long after sign-in."
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the session cookie `Secure` (set `true` behind HTTPS; it is always "
        "`HttpOnly` and `SameSite=Strict`).",
    )
    logins_per_client_per_minute: int = Field(
        10,
        ge=1,
        description="Sign-in posts one client address (an IPv6 /64) may make per minute; "
        "more get 429 before any password is checked.",
    )
    logins_per_minute: int = Field(
        120, ge=1, description="Sign-in posts all clients together may make per minute."
    )
    concurrent_password_checks: int = Field(
        2, ge=1, description="Password hashes (scrypt, 128 MiB each) computed at once."
    )


# -- MFA service (verifiers/service) --------------------------------------------------------


class ServiceSettings(BaseModel):
    """The MFA service (`factorstream serve`): the verifiers over HTTP, signed assertions."""

    host: str = Field("127.0.0.1", description="Interface the service binds.")
    port: int = Field(8070, ge=1, le=65535, description="Port of the service.")
    issuer: str | None = Field(
        None,
        description="`iss` of the MFA assertions: the URL relying parties know the service by "
        "(default: `http://<host>:<port>`).",
    )
    assertion_lifetime_s: float = Field(
        300.0, gt=0, le=86400, description="An MFA assertion expires this long after it is issued."
    )
    max_body_bytes: int = Field(
        16384, ge=256, description="Larger request bodies are refused (413)."
    )
    signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs MFA assertions (default: "
        "`keys/service-signing.pem` in data_dir, created on first use, mode 0600). Retired "
        "keys' public halves sit beside it and stay in the JWKS.",
    )
    secrets_key_file: Path | None = Field(
        None,
        description="Key that encrypts factor secrets in the verifier database (default: "
        "`keys/verifier-secrets.key` in data_dir, created on first use, mode 0600).",
    )
    source: str = Field(
        "urn:factorstream:service",
        min_length=1,
        description="CloudEvents `source` of the events the service's ceremonies emit.",
    )
    webauthn_rp_id: str | None = Field(
        None,
        description="WebAuthn relying party id: the login site's domain (default: the "
        "issuer's host).",
    )
    webauthn_rp_name: str = Field(
        "factorstream", min_length=1, description="WebAuthn relying party name (shown)."
    )
    webauthn_origins: list[str] = Field(
        default_factory=list,
        description='Origins a WebAuthn response may come from, as JSON (`["https://login.'
        "example.com\"]`; default: the issuer's origin).",
    )
    smtp_host: str | None = Field(
        None, description="SMTP relay for e-mail codes (unset: the e-mail factor is unavailable)."
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_sender: str = Field(
        "no-reply@localhost", min_length=3, description="`From` of e-mailed codes."
    )
    smtp_starttls: bool = Field(False, description="Use STARTTLS with the SMTP relay.")
    smtp_username: str | None = Field(None, description="SMTP login (with `smtp_password`).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    sms_gateway_url: str | None = Field(
        None,
        description="JSON gateway for SMS and voice codes (`POST {to, body, channel}`; unset: "
        "SMS and voice are unavailable).",
    )
    sms_gateway_token: SecretStr | None = Field(
        None, description="Bearer token for the SMS gateway."
    )
    sms_costs_file: Path | None = Field(
        None,
        description="SMS and voice price table and per-tenant daily caps per destination "
        "country (TOML or JSON, format in docs/sms-cost.md; unset: sends are neither priced "
        "nor capped). The SMS gateway's provider name is `sms-gateway`.",
    )
    stream_view: bool = Field(
        False,
        description="Read the stream's state from Kafka (`kafka_bootstrap`; the events, "
        "lockouts and anomalies topics): the worker's locks and IP blocks are refused (423) "
        "and `/v1/assess` scores against each subject's profile. Off: no stream state, only "
        "the verifier's own lockout gate.",
    )
    stream_events_topic: str | None = Field(
        None,
        description="The events topic the stream view learns profiles from (default: "
        "`topics.events`; `<app_id>-events-ingested` for the worker's geo-enriched copy).",
    )
    rate_per_ip_per_s: float = Field(
        100.0, ge=0, description="Requests a second per caller IP (token bucket; 0: no limit)."
    )
    rate_per_ip_burst: int = Field(200, ge=1, description="… at most this many at once.")
    rate_per_client_per_s: float = Field(
        500.0, ge=0, description="Requests a second per client credential (0: no limit)."
    )
    rate_per_client_burst: int = Field(1000, ge=1, description="… at most this many at once.")
    trusted_proxies: list[str] = Field(
        [],
        description="CIDR networks of reverse proxies whose `X-Forwarded-For` names the "
        "caller for the rate limits (none: the TCP peer is the caller).",
    )


# -- alerts to the SOC (alerts/) -------------------------------------------------------------


class AlertDestinationSettings(BaseModel):
    """One place alerts go (an item of `alerts.destinations`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Its name in routes, logs, the consumer group and the dedup keys.",
    )
    kind: Literal["webhook", "slack", "syslog"] = Field(
        ..., description="`webhook` (HTTPS POST of JSON), `slack` (incoming webhook) or `syslog`."
    )
    url: str | None = Field(None, description="webhook, slack: the URL POSTed to.")
    secret_file: Path | None = Field(
        None,
        description="webhook: a file holding the HMAC-SHA256 secret that signs each request "
        "(docs/alerts.md); unset: unsigned.",
    )
    format: Literal["alert", "ocsf"] = Field(
        "alert",
        description="webhook, syslog: `alert` (our JSON, or text in syslog) or `ocsf` (OCSF 1.1).",
    )
    host: str | None = Field(None, description="syslog: the collector's host.")
    port: int = Field(514, ge=1, le=65535, description="syslog: the collector's port.")
    transport: Literal["udp", "tcp"] = Field(
        "udp", description="syslog: `udp` (RFC 5426) or `tcp` (octet-counted, RFC 6587)."
    )
    facility: int = Field(10, ge=0, le=23, description="syslog: facility (10 authpriv).")
    hostname: str = Field("-", description="syslog: the HOSTNAME field of the messages.")
    timeout_s: float = Field(10.0, gt=0, description="One attempt's connect and answer time.")


class AlertRouteSettings(BaseModel):
    """Which alerts go where (an item of `alerts.routes`)."""

    model_config = ConfigDict(extra="forbid")

    destinations: list[str] = Field(..., min_length=1, description="Destination names.")
    tenants: list[str] | None = Field(None, description="Only these tenants (unset: all).")
    types: list[Literal["risk.detected", "lockout.applied", "ip.block.applied"]] | None = Field(
        None, description="Only these event types (unset: the three)."
    )
    detections: list[str] | None = Field(
        None, description="risk.detected: only these detections (unset: all)."
    )
    min_severity: Literal["none", "low", "medium", "high", "critical"] = Field(
        "low", description="At least this severity."
    )


class AlertSettings(BaseModel):
    """Alerts to the SOC (`factorstream alerts run`, docs/alerts.md): detections, lockouts
    and IP blocks to webhooks, Slack and syslog, grouped, retried, dead-lettered."""

    destinations: list[AlertDestinationSettings] = Field(
        default_factory=list,
        description='Where alerts go, as JSON: `[{"name": "soc", "kind": "webhook", '
        '"url": "https://…", "secret_file": "/etc/fs/soc.key"}, {"name": '
        '"siem", "kind": "syslog", "host": "siem", "transport": "tcp"}]`.',
    )
    routes: list[AlertRouteSettings] = Field(
        default_factory=list,
        description='Which alerts go where, as JSON: `[{"destinations": ["slack"], '
        '"tenants": ["acme"], "types": ["risk.detected"], "min_severity": '
        '"high"}]`; a destination takes an alert any of its routes matches. Empty: every '
        "destination takes every alert of `min_severity` or above.",
    )
    min_severity: Literal["none", "low", "medium", "high", "critical"] = Field(
        "medium",
        description="Without routes: the least severity alerted. Lockouts are medium (a "
        "factor's low, permanent high), IP blocks medium, detections their own.",
    )
    window_s: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Grouping: alerts of one tenant, type, detection and key (subject or IP) "
        "this soon after the first are counted, not sent; a summary with the count follows at "
        "the window's end. Commits wait for open groups, so a restart re-reads at most this "
        "much (re-sent alerts keep their dedup keys).",
    )
    max_groups: int = Field(
        10_000, ge=1, description="Grouping: open groups at most (the oldest closes early)."
    )
    lockouts_by: Literal["tenant", "subject"] = Field(
        "tenant",
        description="Grouping of subject and factor lockouts: `tenant` (a spray locking many "
        "subjects is one alert) or `subject`.",
    )
    retry_initial_s: float = Field(1.0, gt=0, description="First wait after a failed attempt.")
    retry_max_s: float = Field(60.0, gt=0, description="Longest wait between attempts.")
    give_up_after_s: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        description="A destination failing this long (down, 5xx) has the alert in hand "
        "dead-lettered and moves on; until then it waits and holds its commits, so a receiver "
        "down for less gets everything once back. A permanent refusal (4xx but 408/425/429) "
        "is dead-lettered at once.",
    )
    dead_letter_topic: str = Field(
        "mfa.alerts.dlq",
        description="Alerts no destination took: key = dedup key, value = destination, reason, "
        "attempts and the alert.",
    )
    probes_host: str = Field(
        "127.0.0.1",
        description="Interface of the process's `/health`, `/ready` and `/metrics` "
        "(docs/metrics.md).",
    )
    probes_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the process's `/health`, `/ready` and `/metrics` "
        "(docs/metrics.md); unset: not served.",
    )


# -- identity providers' logs (sources/) --------------------------------------------------


class IdpSettings(BaseModel):
    """Identity-provider adapters (`factorstream idp`): pollers of Auth0, Okta, Keycloak and
    Entra ID logs, and their webhook receivers."""

    state_dir: Path | None = Field(
        None,
        description="Adapters' configuration, credentials (mode 0600), cursors and unmapped "
        "records (default: `idp` in data_dir). A poller holds its adapter's lock file here: "
        "one poller per adapter.",
    )
    poll_interval_s: float = Field(
        30.0, gt=0, description="A poller that has read everything waits this long to poll again."
    )
    page_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="Records asked for per request (capped by each API: Auth0 100, Okta 1000).",
    )
    lookback_s: float = Field(
        86400.0,
        gt=0,
        description="Where a new Okta, Keycloak or Entra adapter starts: this long before its "
        "first poll (a new Auth0 adapter starts at the oldest log retained).",
    )
    backoff_initial_s: float = Field(
        1.0, gt=0, description="First wait after a provider's 5xx or a broker outage …"
    )
    backoff_max_s: float = Field(
        300.0,
        gt=0,
        description="… doubling up to this (also the wait after credentials are refused). A "
        "429 waits what the provider's reset header says instead.",
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="A provider request that takes longer fails (and is retried)."
    )
    token_refresh_margin_s: float = Field(
        60.0, ge=0, description="An OAuth2 access token is renewed this long before it expires."
    )
    webhook_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Larger webhook bodies are refused (413)."
    )
    ingest_batch_size: int = Field(
        500, ge=1, description="Events `idp ingest` sends per acknowledged batch."
    )


# -- HTTP ingest (sources/) ----------------------------------------------------------------


class IngestSettings(BaseModel):
    """HTTP ingest (`factorstream ingest serve`): CloudEvents over HTTP onto the events topic."""

    host: str = Field("127.0.0.1", description="Interface the ingest binds.")
    port: int = Field(8071, ge=1, le=65535, description="Port of the ingest.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database of ingest credentials (default: SQLite "
        "`ingest.db` in data_dir). Its own database: an MFA-service credential is not an "
        "ingest credential.",
    )
    events_topic: str | None = Field(
        None, description="Topic the events go to (default: `topics.events`)."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Larger request bodies are refused (413)."
    )
    max_batch_events: int = Field(
        1000, ge=1, description="A batch of more events is refused (413)."
    )
    delivery_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How long a request waits for the broker to acknowledge its events "
        "before it is answered 503.",
    )
    retry_after_s: int = Field(
        5, ge=1, le=3600, description="`Retry-After` of a 503 while the broker is unreachable."
    )
    linger_ms: int = Field(
        5, ge=0, le=1000, description="How long the producer gathers events into a batch."
    )
    signing_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 secret: when set, every request must carry a fresh, "
        "unused `X-Factorstream-Signature: t=…,v1=…` over its body and CloudEvents headers "
        "(unset: bearer credentials alone).",
    )
    signature_window_s: float = Field(
        300.0,
        ge=1,
        le=3600,
        description="A signature whose time is further than this from the ingest's clock is "
        "refused, as is one already accepted within it (a replay).",
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
    kafka_security: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)
    outbox_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the outbox database (default: SQLite in data_dir).",
    )
    topics: TopicSettings = Field(default_factory=TopicSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    detections: DetectionSettings = Field(default_factory=DetectionSettings)
    ip_block: IpBlockSettings = Field(default_factory=IpBlockSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    idp: IdpSettings = Field(default_factory=IdpSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    def kafka(self) -> KafkaConnection:
        """The connection every Kafka client of the project uses (``kafka_bootstrap`` with
        ``kafka_security``)."""
        return self.kafka_security.connection(self.kafka_bootstrap)

    def outbox_database_url(self) -> str:
        return self.outbox_url or self.sqlite_url("outbox.db")

    def ingest_database_url(self) -> str:
        return self.ingest.database_url or self.sqlite_url("ingest.db")

    def ledger_database_url(self) -> str:
        return self.ledger.url or self.sqlite_url("ledger.db")

    def dashboard_database_url(self) -> str:
        return self.dashboard.users_url or self.sqlite_url("dashboard.db")

    def idp_state_dir(self) -> Path:
        return self.idp.state_dir or self.data_dir / "idp"

    def lake_path(self) -> Path:
        return self.lake.path or self.data_dir / "lake"

    def key_file(self, configured: Path | None, default_name: str) -> Path:
        """A key file: the configured one, or ``keys/<default_name>`` in data_dir."""
        return configured or self.data_dir / "keys" / default_name

    def sqlite_url(self, name: str) -> str:
        """SQLAlchemy URL of a SQLite database file in data_dir."""
        return f"sqlite:///{(self.data_dir / name).resolve()}"


ENV_PREFIX = "FACTORSTREAM_"


def setting_fields(
    model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX
) -> Iterator[tuple[str, FieldInfo]]:
    """Every setting as (environment variable, field), nested groups flattened with ``__``."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from setting_fields(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}", info


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """``FACTORSTREAM_*`` variables that name no setting (a typo is otherwise ignored)."""
    known = {name for name, _ in setting_fields()}
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def load_settings() -> Settings:
    """Read settings from the environment; call once, in ``main()``."""
    return Settings()


def environment(settings: Settings) -> dict[str, str]:
    """``settings`` as ``FACTORSTREAM_*`` variables, for a child process (the worker the demo
    or a benchmark starts) to read back the same settings. Unset (None) values are left
    out; lists are JSON; secrets are given in clear (the child needs them): keep the
    result out of logs."""
    found = dict(_flatten(_revealed(settings, settings.model_dump(mode="json")), ENV_PREFIX))
    for name, days in settings.retention.periods().items():  # kept for ever is not unset
        if days is None:
            found[f"{ENV_PREFIX}RETENTION__{name.upper()}"] = "forever"
    return found


def _revealed(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    """``dumped`` (``model``'s JSON dump, where secrets read ``**********``) with each
    secret's own value."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            dumped[name] = value.get_secret_value()
        elif isinstance(value, BaseModel) and isinstance(dumped.get(name), dict):
            _revealed(value, dumped[name])
    return dumped


def _flatten(values: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for name, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name.upper()}__")
        elif isinstance(value, list):
            yield f"{prefix}{name.upper()}", json.dumps(value)
        elif isinstance(value, bool):
            yield f"{prefix}{name.upper()}", "true" if value else "false"
        elif value is not None:
            yield f"{prefix}{name.upper()}", str(value)

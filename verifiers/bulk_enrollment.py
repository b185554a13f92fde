"""Bulk enrollment: importing TOTP seeds migrated from another system, and inviting many
subjects to enrol a factor. Both are idempotent and write in batches.

* :func:`import_seeds` makes each seed an **active** TOTP enrollment (its secret sealed
  as :mod:`verifiers.totp` seals it) with an ``mfa.enrollment.completed`` event whose
  ``imported_from`` says it was migrated. A subject that already has an active TOTP
  enrollment with the same secret is *already present* (nothing written again); with
  another secret the row is refused (``enrolled_with_another_secret``): the import never
  replaces a factor a person uses.
* :func:`invite` records an ``invited`` enrollment row (no secret) and an
  ``mfa.enrollment.started`` event with ``invited: true`` for each subject that has
  nothing of that factor yet (invited, pending or active); the others are *already
  present*.

Each batch is one transaction: its rows and their events (through the outbox) commit
together, so an interrupted run leaves whole batches, and running it again finishes the
rest. Importers are serialised (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction
advisory lock), so two runs of one file cannot both insert a seed. Enrollment is not an
authentication attempt: no lockout state is read or written (like
:func:`verifiers.totp.begin_enrollment`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from schemas import Event, new_event
from schemas.envelope import check_tenant
from schemas.fields import Channel, Factor
from schemas.payloads import Authenticator, EnrollmentCompleted, EnrollmentStarted, Payload
from verifiers.bulk_files import Invitee, Rejected, RowError
from verifiers.seed_files import TotpSeed, decode_secret
from verifiers.store import VerifierStore
from verifiers.tables import INVITED, enrollments

BATCH_ROWS = 500
"""Rows a transaction writes (the 10,000-row import runs as 20 transactions)."""
IMPORT_LOCK = 0x6673_656E_726F_6C6C  # "fsenroll": PostgreSQL advisory lock of importers

_TEXTS = postgresql.ARRAY(sa.String())
Row = TypeVar("Row", TotpSeed, Invitee)
Enrolled = sa.Row[str, str, str, bytes | None]
"""An enrollment row as :func:`_existing` reads it: id, subject, status, sealed secret."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Batches:
    """How a bulk run writes: rows per transaction, who is told what each committed batch
    did (a progress bar), and when to stop between two batches (a signal)."""

    rows: int = BATCH_ROWS
    on_commit: Callable[[BulkResult], None] | None = None
    stop: Callable[[], bool] = _never


@dataclass
class BulkResult:
    """What a bulk run did, row by row: counts and the refused rows."""

    added: int = 0
    already_present: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    stopped: bool = False
    """Asked to stop (:attr:`Batches.stop`) before every row was written."""

    @property
    def rows(self) -> int:
        return self.added + self.already_present + len(self.rejected)

    def merge(self, other: BulkResult) -> None:
        self.added += other.added
        self.already_present += other.already_present
        self.rejected.extend(other.rejected)


@dataclass(frozen=True)
class Target:
    """Where a bulk run writes: a tenant's enrollments of one factor, at one time, under
    one correlation id (the run)."""

    tenant: str
    factor: Factor
    now: datetime
    correlationid: str


NewEnrollment = tuple[dict[str, object], Payload]
"""A new enrollment row's own columns (status, secret, settings, confirmed_at) and its
event's payload."""
Decision = NewEnrollment | Rejected | None
Decide = Callable[[Row, str, list[Enrolled]], Decision]
"""What one file row becomes, given a fresh enrollment id and the subject's enrollments
of the factor: a new enrollment, a refusal, or ``None`` (already present)."""


def import_seeds(
    store: VerifierStore,
    seeds: Sequence[TotpSeed],
    *,
    tenant: str,
    now: datetime,
    correlationid: str,
    imported_from: str,
    batches: Batches = Batches(),
) -> BulkResult:
    """Enrol ``seeds`` in ``tenant`` as confirmed TOTP factors (see the module docstring)."""

    def decide(seed: TotpSeed, enrollment_id: str, existing: list[Enrolled]) -> Decision:
        active = [row for row in existing if row.status == "active"]
        if any(_same_secret(store, row, seed.secret) for row in active):
            return None
        if active:
            return Rejected(
                seed.row,
                "enrolled_with_another_secret",
                "the subject already has an active TOTP factor with another secret "
                "(remove it first to replace it)",
            )
        settings: dict[str, object] = {
            "algorithm": seed.algorithm,
            "digits": seed.digits,
            "period": seed.period,
            "imported_from": imported_from,
        }
        if seed.issuer:
            settings["issuer"] = seed.issuer
        columns: dict[str, object] = {
            "status": "active",
            "secret": store.seal_enrollment(enrollment_id, seed.base32.encode()),
            "settings": settings,
            "confirmed_at": now,
        }
        return columns, EnrollmentCompleted(
            factor=Factor.TOTP,
            enrollment_id=enrollment_id,
            channel=Channel.AUTHENTICATOR_APP,
            authenticator=Authenticator(algorithm=seed.algorithm, digits=seed.digits),
            imported_from=imported_from,
        )

    target = Target(check_tenant(tenant), Factor.TOTP, now, correlationid)
    return _enroll(store, target, seeds, decide, batches)


def invite(
    store: VerifierStore,
    invitees: Sequence[Invitee],
    *,
    tenant: str,
    factor: Factor,
    now: datetime,
    correlationid: str,
    batches: Batches = Batches(),
) -> BulkResult:
    """Invite each subject to enrol ``factor`` (see the module docstring)."""

    def decide(invitee: Invitee, enrollment_id: str, existing: list[Enrolled]) -> Decision:
        if existing:
            return None
        columns: dict[str, object] = {
            "status": INVITED,
            "secret": None,
            "settings": {},
            "confirmed_at": None,
        }
        return columns, EnrollmentStarted(factor=factor, enrollment_id=enrollment_id, invited=True)

    target = Target(check_tenant(tenant), factor, now, correlationid)
    return _enroll(store, target, invitees, decide, batches)


def _enroll(
    store: VerifierStore,
    target: Target,
    rows: Sequence[Row],
    decide: Decide[Row],
    batches: Batches,
) -> BulkResult:
    """Each of ``rows`` as ``decide`` says, a batch a transaction with its events."""
    total = BulkResult()
    for start in range(0, len(rows), batches.rows):
        if batches.stop():
            total.stopped = True
            break
        with store.engine.connect() as connection, connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(IMPORT_LOCK)))
                # psycopg prepares a statement run five times; its generic plan, made while
                # the table's statistics predate the import, scanned every row per batch
                connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            result = _batch(store, connection, target, rows[start : start + batches.rows], decide)
        total.merge(result)
        if batches.on_commit is not None:
            batches.on_commit(result)
    return total


def _batch(
    store: VerifierStore,
    connection: sa.Connection,
    target: Target,
    batch: Sequence[Row],
    decide: Decide[Row],
) -> BulkResult:
    result = BulkResult()
    existing = _existing(connection, target.tenant, target.factor, [r.subject for r in batch])
    inserts: list[dict[str, object]] = []
    events: list[Event] = []
    for row in batch:
        enrollment_id = f"{target.factor.value}-{store.entropy.identifier()}"
        decided = decide(row, enrollment_id, existing.get(row.subject, []))
        if decided is None:
            result.already_present += 1
            continue
        if isinstance(decided, Rejected):
            result.rejected.append(decided)
            continue
        columns, payload = decided
        inserts.append(
            {
                "id": enrollment_id,
                "tenant": target.tenant,
                "subject": row.subject,
                "factor": target.factor.value,
                "created_at": target.now,
                **columns,
            }
        )
        events.append(
            new_event(
                payload,
                source=store.source,
                tenant=target.tenant,
                subject=row.subject,
                correlationid=target.correlationid,
                now=target.now,
                event_id=store.entropy.event_id(target.now),
            )
        )
    if inserts:
        connection.execute(enrollments.insert(), inserts)
        store.outbox.add(connection, events)
    result.added = len(inserts)
    return result


def _existing(
    connection: sa.Connection, tenant: str, factor: Factor, subjects: Iterable[str]
) -> dict[str, list[Enrolled]]:
    """The subjects' enrollments of ``factor`` that are not removed, by subject."""
    found: dict[str, list[Enrolled]] = {}
    named = sorted(set(subjects))
    if connection.dialect.name == "postgresql":
        # one array parameter: PostgreSQL probes the index by subject (an IN list of 500
        # parameters was compared row by row, 40× slower, on a table just filled)
        among = enrollments.c.subject == sa.any_(sa.bindparam("named", named, type_=_TEXTS))
    else:
        among = enrollments.c.subject.in_(named)
    query = sa.select(
        enrollments.c.id, enrollments.c.subject, enrollments.c.status, enrollments.c.secret
    ).where(
        enrollments.c.tenant == tenant,
        enrollments.c.factor == factor.value,
        enrollments.c.status != "removed",
        among,
    )
    for row in connection.execute(query):
        found.setdefault(row.subject, []).append(row)
    return found


def _same_secret(store: VerifierStore, row: Enrolled, secret: bytes) -> bool:
    if row.secret is None:
        return False
    try:
        stored = decode_secret(store.open_enrollment(row.id, row.secret).decode())
    except RowError:
        return False
    return hmac.compare_digest(stored, secret)

"""The verifier store: one database transaction per ceremony step, gated by the lockout fold.

Every ceremony step runs inside :meth:`VerifierStore.step`. The step

1. takes the subject's row lock (an upsert of its lockout row on PostgreSQL; on SQLite
   every transaction begins ``IMMEDIATE``, which serialises writers), so concurrent
   attempts for one subject are evaluated one after another and cannot outrun the
   lockout; the ceremony's own first read (``read``) comes back with it, in the same
   statement on PostgreSQL;
2. asks the pure lockout fold (:mod:`verifiers.lockout`) whether the subject or factor
   is locked at ``now``, and whether the stream has locked it (``stream_lockouts``);
3. lets the ceremony change its tables and emit events; each event is folded into the
   subject's lockout state and staged in the outbox (:meth:`Step.emit_if`: a guarded
   change and its event in one statement);
4. commits the state change, the new lockout state (written only when it changed) and
   the events together.

The verifier does not publish the fold's derived ``lockout.*`` events: the stream runs
the same fold over the same log and is their system of record (docs/design.md, "The guarantees").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.dialects import postgresql, sqlite

from schemas import Event, new_event
from schemas.fields import Client, Factor, PolicyTier
from schemas.payloads import Activity, Payload
from schemas.signing import sign_event
from verifiers.crypto import SecretBox
from verifiers.entropy import SYSTEM, Entropy
from verifiers.lockout import (
    LockoutPolicy,
    LockoutState,
    LockoutStatus,
    fold_lockout,
    lockout_status,
)
from verifiers.policy import TIERS, TierPolicy, lockout_policy
from verifiers.publish import Outbox, outbox_engine
from verifiers.resend import Sent
from verifiers.tables import challenges, lockout_states

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

StreamLockouts = Callable[[str, str, Factor | None], LockoutStatus | None]
"""Asks the stream's lockout API whether (tenant, subject, factor) is locked."""


class VerifierError(Exception):
    """Root of the verifiers' errors: misuse and infrastructure, never a wrong code."""


@dataclass(frozen=True)
class Verdict:
    """The result of a verification: accepted, or refused with a machine-readable reason."""

    accepted: bool
    reason: str | None = None
    event: Event | None = None
    locked_until: datetime | None = None

    @classmethod
    def refused(cls, reason: str, event: Event | None, step: Step | None = None) -> Verdict:
        """A refusal; ``locked_until`` says whether this step left the subject locked."""
        status = step.current_lockout() if step is not None else None
        return cls(False, reason, event, status.until if status and status.locked else None)


@dataclass(frozen=True)
class Request:
    """Who is doing what, when and from where: the context every ceremony step records."""

    tenant: str
    subject: str
    correlationid: str
    now: datetime
    tier: PolicyTier = PolicyTier.CUSTOMER
    application: str | None = None
    client: Client | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("Request.now must be timezone-aware (UTC)")
        object.__setattr__(self, "now", self.now.astimezone(UTC))

    def ms_since(self, start: datetime) -> int:
        """Whole milliseconds from ``start`` to ``now`` (never negative)."""
        return max(0, int((self.now - start).total_seconds() * 1000))


@dataclass
class Step:
    """One ceremony step in progress: its connection, lockout status and staged events."""

    connection: sa.Connection
    request: Request
    source: str
    lockout: LockoutStatus
    state: LockoutState
    policy: TierPolicy
    lockout_policy: LockoutPolicy
    gated: bool
    factor: Factor | None
    outbox: Outbox
    rows: Sequence[Any] = ()
    """What the step's ``read`` returned (:meth:`VerifierStore.step`)."""
    events: list[Event] = field(default_factory=list)
    staged: int = 0
    """How many of ``events`` are in the outbox already (the rest go at commit)."""
    entropy: Entropy = SYSTEM
    abandoned: bool = False
    """Set by :meth:`abandon`: the step's transaction rolls back, nothing is recorded."""

    def abandon(self) -> None:
        """Roll the step back when it ends: no change, no lockout state, no event. Only for
        a request that names nothing the store knows (the service's unknown subject), so
        that such a request leaves no row behind."""
        self.abandoned = True

    def current_lockout(self) -> LockoutStatus:
        """The lockout status after the events emitted so far in this step."""
        return lockout_status(self.state, now=self.request.now, factor=self.factor)

    def emit(self, payload: Payload, *, signer: Ed25519PrivateKey | None = None) -> Event:
        """Record ``payload`` as an event of this step (request context filled in);
        ``signer``: sign it, as a control event must be (``schemas.signing``)."""
        return self._record(self._event(payload, signer))

    def emit_if(
        self, change: sa.Update, params: Mapping[str, Any], payload: Payload
    ) -> Event | None:
        """Run ``change``, an UPDATE of at most one row that its WHERE may refuse (a guard),
        and record ``payload`` only if it changed the row; ``None`` if it did not.

        The change and the event's outbox row are one statement where the database can
        (:meth:`Outbox.add_if`), so the guard decides both at once.
        """
        self.outbox.add(self.connection, self.events[self.staged :])  # in emission order
        self.staged = len(self.events)
        event = self.outbox.add_if(
            self.connection, change, params, lambda: self._event(payload, None)
        )
        if event is None:
            return None
        self.staged += 1
        return self._record(event)

    def _event(self, payload: Payload, signer: Ed25519PrivateKey | None) -> Event:
        request = self.request
        if isinstance(payload, Activity):
            payload = _with_context(payload, request)
        event = new_event(
            payload,
            source=self.source,
            tenant=request.tenant,
            subject=request.subject,
            correlationid=request.correlationid,
            now=request.now,
            event_id=self.entropy.event_id(request.now),
        )
        if signer is not None:
            event = sign_event(event, signer)
        return event

    def _record(self, event: Event) -> Event:
        if self.gated:
            self.state, _ = fold_lockout(self.state, event, self.lockout_policy)
        self.events.append(event)
        return event

    def sends(self, factors: Iterable[Factor], window: timedelta) -> list[Sent]:
        """The challenges of ``factors`` issued to the subject within ``window`` before now,
        whatever their purpose or enrollment, for the resend cooldown
        (:func:`verifiers.resend.refuse_send`)."""
        request = self.request
        rows = self.connection.execute(
            sa.select(
                challenges.c.created_at, challenges.c.factor, challenges.c.closed_reason
            ).where(
                challenges.c.tenant == request.tenant,
                challenges.c.subject == request.subject,
                challenges.c.factor.in_(sorted(factors)),
                challenges.c.created_at > request.now - window,
            )
        )
        return [Sent(r.created_at, Factor(r.factor), r.closed_reason == "used") for r in rows]

    def close_challenge(self, challenge_id: str, reason: str, **values: Any) -> None:
        """Close ``challenge_id`` if it is still open (``values``: more columns to set)."""
        self.connection.execute(
            challenges.update()
            .where(challenges.c.id == challenge_id, challenges.c.closed_at.is_(None))
            .values(closed_at=self.request.now, closed_reason=reason, **values)
        )


def _with_context(payload: Activity, request: Request) -> Activity:
    return msgspec.structs.replace(
        payload,
        application=payload.application or request.application,
        policy_tier=payload.policy_tier or request.tier,
        client=payload.client or request.client,
    )


def store_engine(url: str) -> sa.Engine:
    """An engine for the verifier database; SQLite transactions begin IMMEDIATE."""
    engine = outbox_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _claim(dialect: Any) -> Any:
    insert = dialect.insert(lockout_states).values(
        tenant=sa.bindparam("k_tenant"),
        subject=sa.bindparam("k_subject"),
        state=sa.bindparam("fresh", type_=sa.JSON()),
    )
    return insert.on_conflict_do_update(
        index_elements=[lockout_states.c.tenant, lockout_states.c.subject],
        set_={"tenant": insert.excluded.tenant},
    ).returning(lockout_states.c.state)


# Built once: constructing SQLAlchemy statements per step cost more than running them.
_CLAIM = {"postgresql": _claim(postgresql), "sqlite": _claim(sqlite)}
_FRESH = LockoutState().to_dict()
_SAVE_STATE = (
    lockout_states.update()
    .where(
        lockout_states.c.tenant == sa.bindparam("k_tenant"),
        lockout_states.c.subject == sa.bindparam("k_subject"),
    )
    .values(state=sa.bindparam("state", type_=sa.JSON()), updated_at=sa.bindparam("updated_at"))
)


_FOUND = "_found"
"""A marker column of a ``read`` joined to the claim: NULL where the read found no row."""
_CLAIM_AND_READ: dict[sa.Select[Any], sa.Select[Any]] = {}


def _claim_and_read(read: sa.Select[Any]) -> sa.Select[Any]:
    """PostgreSQL: the claim and ``read`` in one statement (a data-modifying WITH and a
    lateral join), built once per ``read``."""
    combined = _CLAIM_AND_READ.get(read)
    if combined is None:
        claim = _CLAIM["postgresql"].cte("claim")
        found = read.add_columns(sa.true().label(_FOUND)).lateral("found")
        combined = sa.select(claim.c.state.label("_lockout_state"), found).select_from(
            claim.outerjoin(found, sa.true())
        )
        _CLAIM_AND_READ[read] = combined
    return combined


def _locked_state(
    connection: sa.Connection, request: Request, read: sa.Select[Any] | None
) -> tuple[LockoutState, Sequence[Any]]:
    """The subject's lockout state, its row created if need be and locked until commit,
    and the rows of ``read``.

    The claim is an upsert that returns the stored state: on PostgreSQL it takes the row
    lock and returns the newest state even after waiting for another step's commit; on
    SQLite the transaction already holds the write lock. With a ``read``, PostgreSQL runs
    both in one statement (one round trip less); SQLite runs them in turn.
    """
    keys = {"tenant": request.tenant, "subject": request.subject}
    claim = {"k_tenant": request.tenant, "k_subject": request.subject, "fresh": _FRESH}
    dialect = connection.dialect.name
    if read is not None and dialect == "postgresql":
        result = connection.execute(_claim_and_read(read), {**claim, **keys}).all()
        found = [row for row in result if getattr(row, _FOUND) is not None]
        return LockoutState.from_dict(result[0]._lockout_state), found
    stored = connection.execute(_CLAIM[dialect], claim).scalar_one()
    rows = () if read is None else connection.execute(read, keys).all()
    return LockoutState.from_dict(stored), rows


class VerifierStore:
    """The service database of the verifiers, with its lockout gate and outbox."""

    def __init__(
        self,
        engine: sa.Engine,
        box: SecretBox,
        *,
        source: str,
        tiers: Mapping[PolicyTier, TierPolicy] = TIERS,
        stream_lockouts: StreamLockouts | None = None,
        entropy: Entropy = SYSTEM,
    ) -> None:
        """``entropy``: where ids and one-time values come from (:mod:`verifiers.entropy`;
        only a simulation replaying a seed passes anything but the default)."""
        self.engine = engine
        self.box = box
        self.source = source
        self.tiers = tiers
        self.stream_lockouts = stream_lockouts
        self.entropy = entropy
        self.outbox = Outbox(engine)
        self.on_committed: Callable[[Sequence[Event]], None] | None = None
        """Told the events of each step once committed (the service's metrics)."""
        self._lockout_policies = {tier: lockout_policy(p) for tier, p in tiers.items()}

    def seal_enrollment(self, enrollment_id: str, plaintext: bytes) -> bytes:
        """Encrypt a secret of one enrollment, bound to its row (it decrypts nowhere else)."""
        return self.box.seal(plaintext, row=f"enrollments:{enrollment_id}")

    def open_enrollment(self, enrollment_id: str, sealed: bytes) -> bytes:
        return self.box.open(sealed, row=f"enrollments:{enrollment_id}")

    def migrate(self) -> None:
        """Create or upgrade the schema (Alembic, ``verifiers/migrations``)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def step(
        self,
        request: Request,
        *,
        factor: Factor | None,
        gated: bool = True,
        read: sa.Select[Any] | None = None,
    ) -> Iterator[Step]:
        """One ceremony step in one transaction (see the module docstring).

        ``gated`` steps lock the subject's lockout row and fold every event they emit;
        enrollment bookkeeping that is not an authentication attempt passes ``False``.

        ``read``: the ceremony's first query, taking the bind parameters ``tenant`` and
        ``subject`` (a module-level statement: its combined form is built once); its rows
        are :attr:`Step.rows`. On PostgreSQL a gated step runs it in the statement that
        takes the lock, so it sees the database as of that statement's start: a row that
        a concurrent step changed while this one waited for the lock may come back as it
        was. Change such rows only with a guard that PostgreSQL re-checks against the
        newest version (``UPDATE … WHERE last_step < :step``, :meth:`Step.emit_if`).
        """
        policy, locking = self.tiers[request.tier], self._lockout_policies[request.tier]
        keys = {"tenant": request.tenant, "subject": request.subject}
        with self.engine.connect() as connection, connection.begin() as transaction:
            if gated:
                state, rows = _locked_state(connection, request, read)
            else:
                state = LockoutState()
                rows = () if read is None else connection.execute(read, keys).all()
            status = lockout_status(state, now=request.now, factor=factor)
            if gated and not status.locked and self.stream_lockouts is not None:
                status = self.stream_lockouts(request.tenant, request.subject, factor) or status
            step = Step(
                connection,
                request,
                self.source,
                status,
                state,
                policy,
                locking,
                gated,
                factor,
                self.outbox,
                rows,
                entropy=self.entropy,
            )
            yield step
            if step.abandoned:
                transaction.rollback()
                return
            # an unchanged state (a success with no failures to reset, the common case)
            # is not written again: the upsert above holds the row lock until commit either
            # way, and updated_at says when the state last changed
            if gated and step.state != state:
                connection.execute(
                    _SAVE_STATE,
                    {
                        "k_tenant": request.tenant,
                        "k_subject": request.subject,
                        "state": step.state.to_dict(),
                        "updated_at": request.now,
                    },
                )
            self.outbox.add(connection, step.events[step.staged :])
        if self.on_committed is not None and step.events:
            self.on_committed(step.events)

    def lockout(self, request: Request, *, factor: Factor | None = None) -> LockoutStatus:
        """The lockout status of a subject at ``request.now`` (read only)."""
        with self.engine.connect() as connection:
            stored = connection.execute(
                sa.select(lockout_states.c.state).where(
                    lockout_states.c.tenant == request.tenant,
                    lockout_states.c.subject == request.subject,
                )
            ).scalar_one_or_none()
        state = LockoutState.from_dict(stored) if stored is not None else LockoutState()
        return lockout_status(state, now=request.now, factor=factor)

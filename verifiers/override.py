"""Administrators' overrides under the two-person rule: unlock a subject, or grant it a
temporary-access code.

One administrator *requests* an override of one subject; a second, different
administrator *approves* it before ``approve_before`` (:attr:`OverrideRules.approval_window`
after the request). In the approval's own transaction an ``unlock`` is folded by the
store's gate (:mod:`verifiers.lockout`) and a ``temporary_access`` makes a code
(:mod:`verifiers.temporary_access`) within the tier's limits. Every refusal is a signed
``admin.override.refused``. Who is an administrator is the caller's to say (:class:`Admin`).
The decisions (:func:`refuse_request`, :func:`refuse_approval`) are pure; ``now`` is a
parameter everywhere. The rule in full: docs/admin-override.md#what-an-approval-does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import Event
from schemas.fields import PolicyTier
from schemas.payloads import (
    AdminOverrideApproved,
    AdminOverrideRefused,
    AdminOverrideRequested,
)
from verifiers import temporary_access
from verifiers.policy import TemporaryAccessLimits
from verifiers.store import Request, Step, VerifierError, VerifierStore
from verifiers.tables import override_requests


class OverrideAction(StrEnum):
    UNLOCK = "unlock"
    """Lift every lock and failure counter of the subject."""
    TEMPORARY_ACCESS = "temporary_access"
    """A code that lets the subject in without its factor, whatever lock it is under."""


class OverrideError(VerifierError):
    """Misuse: no such request, an empty justification or ticket, a naive time."""


@dataclass(frozen=True)
class OverrideRules:
    approval_window: timedelta = timedelta(hours=24)
    """How long a request waits for its second administrator before it expires."""

    def __post_init__(self) -> None:
        if self.approval_window <= timedelta(0):
            raise ValueError(f"approval_window: expected positive, found {self.approval_window}")


@dataclass(frozen=True)
class Admin:
    """Someone acting as an administrator, as the caller vouches for them."""

    name: str
    is_admin: bool
    """Holds the administrator role."""
    signed_in: bool = True
    """Proved to be ``name`` (``False``: a failed sign-in, recorded and refused)."""

    def same_person(self, other: str) -> bool:
        """Names compared without case or surrounding spaces: ``Alice`` may not approve
        ``alice``'s request (a refusal too many is safe, a self-approval is not)."""
        return self.name.strip().casefold() == other.strip().casefold()


@dataclass(frozen=True)
class Override:
    """One request for an override, as stored."""

    id: str
    tenant: str
    subject: str
    action: OverrideAction
    tier: PolicyTier
    requested_by: str
    justification: str
    ticket: str
    requested_at: datetime
    approve_before: datetime
    single_use: bool | None = None
    valid_for: timedelta | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None

    def status(self, now: datetime) -> str:
        """``approved``, ``expired`` (no approval before the deadline) or ``pending``."""
        if self.approved_at is not None:
            return "approved"
        return "expired" if now >= self.approve_before else "pending"


@dataclass(frozen=True)
class OverrideOutcome:
    """What a request or an approval did: accepted, or refused with a reason; its events."""

    accepted: bool
    reason: str | None
    override: Override | None
    events: tuple[Event, ...]
    grant: temporary_access.Grant | None = None
    """An approved temporary access: its code, shown once, and until when it is valid."""


# -- the rule (pure) ---------------------------------------------------------------------


def refuse_request(
    requester: Admin,
    *,
    action: OverrideAction,
    limits: TemporaryAccessLimits,
    valid_for: timedelta | None,
    single_use: bool,
) -> str | None:
    """Why ``requester`` may not ask for this override (``None``: they may)."""
    if not requester.signed_in:
        return "sign_in_refused"
    if not requester.is_admin:
        return "not_admin"
    if action is OverrideAction.TEMPORARY_ACCESS:
        if valid_for is None:
            return "lifetime_over_tier_limit"
        return limits.refusal(valid_for=valid_for, single_use=single_use)
    return None


def refuse_approval(override: Override, approver: Admin, *, now: datetime) -> str | None:
    """Why ``approver`` may not approve ``override`` at ``now`` (``None``: they may)."""
    if not approver.signed_in:
        return "sign_in_refused"
    if not approver.is_admin:
        return "not_admin"
    if override.approved_at is not None:
        return "already_approved"
    if approver.same_person(override.requested_by):
        return "self_approval"
    if now >= override.approve_before:
        return "request_expired"
    return None


# -- the ceremony (store) ----------------------------------------------------------------


def request_override(
    store: VerifierStore,
    *,
    tenant: str,
    subject: str,
    action: OverrideAction | str,
    requester: Admin,
    justification: str,
    ticket: str,
    now: datetime,
    signer: Ed25519PrivateKey,
    tier: PolicyTier | str = PolicyTier.CUSTOMER,
    single_use: bool = True,
    valid_for: timedelta | None = None,
    rules: OverrideRules | None = None,
) -> OverrideOutcome:
    """Record a request (``admin.override.requested``), or its refusal
    (``admin.override.refused``); both signed by ``signer``."""
    action, tier = OverrideAction(action), PolicyTier(tier)
    justification, ticket = justification.strip(), ticket.strip()
    if not justification or not ticket:
        raise OverrideError("an override needs a justification and a ticket")
    if action is OverrideAction.UNLOCK:
        single_use, valid_for = True, None
    window = (rules or OverrideRules()).approval_window
    override = Override(
        id=store.entropy.identifier(),
        tenant=tenant,
        subject=subject,
        action=action,
        tier=tier,
        requested_by=requester.name,
        justification=justification,
        ticket=ticket,
        requested_at=now,
        approve_before=now + window,
        single_use=single_use if action is OverrideAction.TEMPORARY_ACCESS else None,
        valid_for=valid_for,
    )
    reason = refuse_request(
        requester,
        action=action,
        limits=store.tiers[tier].temporary_access,
        valid_for=valid_for,
        single_use=single_use,
    )
    with store.step(_request(override, now), factor=None, gated=False) as step:
        if reason is not None:
            event = _refused(step, override, requester, "request", reason, signer)
            return OverrideOutcome(False, reason, None, (event,))
        step.connection.execute(override_requests.insert().values(**_row(override)))
        event = step.emit(
            AdminOverrideRequested(
                request_id=override.id,
                requested_by=override.requested_by,
                action=action.value,
                justification=justification,
                ticket=ticket,
                approve_before=override.approve_before,
                policy_tier=tier,
                access_valid_for_s=int(valid_for.total_seconds()) if valid_for else None,
                single_use=override.single_use,
            ),
            signer=signer,
        )
    return OverrideOutcome(True, None, override, (event,))


def approve_override(
    store: VerifierStore,
    *,
    request_id: str,
    approver: Admin,
    now: datetime,
    signer: Ed25519PrivateKey,
) -> OverrideOutcome:
    """Approve a pending request as a second administrator, or record why not.

    The approval runs in the subject's gated step (its lockout row locked until commit),
    so an unlock is folded into the gate at once; a second approval racing this one waits
    for it and is refused (``already_approved``)."""
    found = find_override(store, request_id)
    if found is None:
        raise OverrideError(f"no override request {request_id!r}")
    with store.step(_request(found, now), factor=None) as step:
        override = _read(step.connection, request_id, lock=True) or found
        reason = refuse_approval(override, approver, now=now)
        if reason is None and not _claim_approval(step, override, approver):
            reason = "already_approved"
        if reason is not None:
            event = _refused(step, override, approver, "approve", reason, signer)
            return OverrideOutcome(False, reason, override, (event,))
        grant = None
        expires_at = None
        if override.action is OverrideAction.TEMPORARY_ACCESS:
            assert override.valid_for is not None  # noqa: S101 - refused at request otherwise
            expires_at = now + override.valid_for
        approved = step.emit(
            AdminOverrideApproved(
                request_id=override.id,
                approved_by=approver.name,
                action=override.action.value,
                expires_at=expires_at,
                requested_by=override.requested_by,
                ticket=override.ticket,
            ),
            signer=signer,
        )
        events = [approved]
        if expires_at is not None:
            grant = temporary_access.grant(
                step,
                store,
                request_id=override.id,
                single_use=bool(override.single_use),
                expires_at=expires_at,
                granted_by=approver.name,
                requested_by=override.requested_by,
                justification=override.justification,
                ticket=override.ticket,
                signer=signer,
            )
            events.append(grant.event)
    approved_override = find_override(store, request_id) or override
    return OverrideOutcome(True, None, approved_override, tuple(events), grant)


def find_override(store: VerifierStore, request_id: str) -> Override | None:
    with store.engine.connect() as connection:
        return _read(connection, request_id)


def list_overrides(
    store: VerifierStore, *, tenant: str | None = None, subject: str | None = None
) -> list[Override]:
    """Every request, newest first (``Override.status(now)`` says where each stands)."""
    query = sa.select(override_requests).order_by(override_requests.c.requested_at.desc())
    if tenant is not None:
        query = query.where(override_requests.c.tenant == tenant)
    if subject is not None:
        query = query.where(override_requests.c.subject == subject)
    with store.engine.connect() as connection:
        return [_override(row) for row in connection.execute(query)]


def _request(override: Override, now: datetime) -> Request:
    return Request(
        tenant=override.tenant,
        subject=override.subject,
        correlationid=f"override-{override.id}",
        now=now,
        tier=override.tier,
    )


def _claim_approval(step: Step, override: Override, approver: Admin) -> bool:
    """Mark ``override`` approved unless another approval got there first (one conditional
    UPDATE: on both databases only one of two racing approvals changes the row)."""
    done = step.connection.execute(
        override_requests.update()
        .where(override_requests.c.id == override.id, override_requests.c.approved_at.is_(None))
        .values(approved_by=approver.name, approved_at=step.request.now)
    )
    return done.rowcount == 1


def _refused(
    step: Step,
    override: Override,
    who: Admin,
    stage: str,
    reason: str,
    signer: Ed25519PrivateKey,
) -> Event:
    return step.emit(
        AdminOverrideRefused(
            attempted_by=who.name,
            stage=stage,
            reason=reason,
            request_id=override.id,
            action=override.action.value,
            requested_by=override.requested_by,
            ticket=override.ticket,
            justification=override.justification,
        ),
        signer=signer,
    )


def _row(override: Override) -> dict[str, object]:
    return {
        "id": override.id,
        "tenant": override.tenant,
        "subject": override.subject,
        "action": override.action.value,
        "tier": override.tier.value,
        "requested_by": override.requested_by,
        "justification": override.justification,
        "ticket": override.ticket,
        "requested_at": override.requested_at,
        "approve_before": override.approve_before,
        "single_use": override.single_use,
        "valid_for_s": int(override.valid_for.total_seconds()) if override.valid_for else None,
    }


def _read(connection: sa.Connection, request_id: str, *, lock: bool = False) -> Override | None:
    query = sa.select(override_requests).where(override_requests.c.id == request_id)
    if lock:
        query = query.with_for_update()  # PostgreSQL; SQLite's IMMEDIATE already serialises
    row = connection.execute(query).one_or_none()
    return None if row is None else _override(row)


def _override(row: sa.Row[Any]) -> Override:
    m = row._mapping
    return Override(
        id=m["id"],
        tenant=m["tenant"],
        subject=m["subject"],
        action=OverrideAction(m["action"]),
        tier=PolicyTier(m["tier"]),
        requested_by=m["requested_by"],
        justification=m["justification"],
        ticket=m["ticket"],
        requested_at=m["requested_at"],
        approve_before=m["approve_before"],
        single_use=m["single_use"],
        valid_for=timedelta(seconds=m["valid_for_s"]) if m["valid_for_s"] else None,
        approved_by=m["approved_by"],
        approved_at=m["approved_at"],
    )

"""A subject's factors: what is enrolled, and removing one (``mfa.enrollment.removed``).

Listing reads; removal is a ceremony step of its own (not gated: taking a factor away is
not an authentication attempt), recorded with who asked and why. A removed enrollment
keeps its row (``status = removed``, its secret erased) for the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from schemas.fields import Factor
from schemas.payloads import EnrollmentRemoved
from verifiers.store import Request, Verdict, VerifierStore
from verifiers.tables import INVITED, enrollments, recovery_codes


@dataclass(frozen=True)
class EnrolledFactor:
    """One enrollment of a subject, without anything secret."""

    enrollment_id: str
    factor: Factor
    status: str
    """``pending`` (waiting for its first code), ``active``, or ``invited`` (an
    administrator's bulk invitation, :mod:`verifiers.bulk_enrollment`: nothing enrolled
    yet)."""
    created_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True)
class SubjectFactors:
    """Everything a subject has enrolled, and how many recovery codes are left."""

    factors: tuple[EnrolledFactor, ...]
    recovery_codes_remaining: int

    @property
    def known(self) -> bool:
        """Whether the subject has anything at all (else it is unknown to its tenant)."""
        return bool(self.factors) or self.recovery_codes_remaining > 0


_KNOWN = sa.select(
    sa.or_(
        sa.exists().where(
            enrollments.c.tenant == sa.bindparam("tenant"),
            enrollments.c.subject == sa.bindparam("subject"),
            enrollments.c.status != "removed",
        ),
        sa.exists().where(
            recovery_codes.c.tenant == sa.bindparam("tenant"),
            recovery_codes.c.subject == sa.bindparam("subject"),
            recovery_codes.c.used_at.is_(None),
            recovery_codes.c.revoked_at.is_(None),
        ),
    )
)


def subject_known(connection: sa.Connection, *, tenant: str, subject: str) -> bool:
    """Whether the subject has anything in ``tenant`` (what :attr:`SubjectFactors.known`
    says), in one statement on the caller's connection (inside a ceremony's step)."""
    return bool(connection.execute(_KNOWN, {"tenant": tenant, "subject": subject}).scalar_one())


def list_factors(store: VerifierStore, *, tenant: str, subject: str) -> SubjectFactors:
    """The subject's invited, pending and active enrollments (removed ones are left out,
    and an invitation to a factor the subject has enrolled since)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                enrollments.c.id,
                enrollments.c.factor,
                enrollments.c.status,
                enrollments.c.created_at,
                enrollments.c.confirmed_at,
            )
            .where(
                enrollments.c.tenant == tenant,
                enrollments.c.subject == subject,
                enrollments.c.status != "removed",
            )
            .order_by(enrollments.c.created_at, enrollments.c.id)
        ).all()
        remaining = connection.execute(
            sa.select(sa.func.count()).where(
                recovery_codes.c.tenant == tenant,
                recovery_codes.c.subject == subject,
                recovery_codes.c.used_at.is_(None),
                recovery_codes.c.revoked_at.is_(None),
            )
        ).scalar_one()
    enrolled = {row.factor for row in rows if row.status != INVITED}
    factors = tuple(
        EnrolledFactor(row.id, Factor(row.factor), row.status, row.created_at, row.confirmed_at)
        for row in rows
        if row.status != INVITED or row.factor not in enrolled  # an invitation taken up
    )
    return SubjectFactors(factors, remaining)


def remove_factor(
    store: VerifierStore,
    request: Request,
    *,
    enrollment_id: str,
    reason: str = "user_requested",
    removed_by: str | None = None,
) -> Verdict:
    """Remove one of the subject's enrollments; refused with ``unknown_enrollment`` when the
    subject has no such (pending or active) enrollment."""
    with store.step(request, factor=None, gated=False) as step:
        row = step.connection.execute(
            sa.select(enrollments.c.factor).where(
                enrollments.c.id == enrollment_id,
                enrollments.c.tenant == request.tenant,
                enrollments.c.subject == request.subject,
                enrollments.c.status != "removed",
            )
        ).one_or_none()
        if row is None:
            return Verdict(False, "unknown_enrollment")
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == enrollment_id)
            .values(status="removed", removed_at=request.now, secret=None, destination=None)
        )
        event = step.emit(
            EnrollmentRemoved(
                factor=Factor(row.factor),
                enrollment_id=enrollment_id,
                reason=reason,
                removed_by=removed_by,
            )
        )
        return Verdict(True, None, event)

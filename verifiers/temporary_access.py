"""Temporary-access codes: how a locked-out person gets in once two administrators agreed.

A code is made only by an approved override (:mod:`verifiers.override`): 16 characters from
the recovery codes' 32-letter alphabet (80 random bits, shown as ``XXXX-XXXX-XXXX-XXXX``),
bound to one tenant and subject, valid until ``expires_at``, single use or not. Only a
keyed hash of it is stored (:meth:`~verifiers.crypto.SecretBox.code_hash`): 80 bits need no
slow hash, and the key is not in the database.

:func:`redeem` is the way in: it does **not** refuse a locked subject (letting a locked
person in is the point) and neither lifts the lock nor counts towards it. Using a code is
one conditional UPDATE (not revoked, not expired, not used up), so of two uses racing for a
single-use code exactly one succeeds, on SQLite and PostgreSQL alike. Every use and every
refusal is an event (``access.temporary.used|refused``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas import Event
from schemas.payloads import TemporaryAccessGranted, TemporaryAccessRefused, TemporaryAccessUsed
from verifiers.recovery_codes import ALPHABET, grouped, normalise
from verifiers.store import Request, Step, Verdict, VerifierStore
from verifiers.tables import temporary_access

CODE_LENGTH = 16
_LOOKUP_SALT = b"temporary-access-lookup"
SCOPE = "sign_in"
"""What a code is for: one way in, past any lock (recorded as the grant's ``scope``)."""


@dataclass(frozen=True)
class Grant:
    """A temporary access just granted: the code is shown once and kept nowhere."""

    grant_id: str
    code: str
    expires_at: datetime
    single_use: bool
    event: Event


def grant(
    step: Step,
    store: VerifierStore,
    *,
    request_id: str,
    single_use: bool,
    expires_at: datetime,
    granted_by: str,
    requested_by: str,
    justification: str,
    ticket: str,
    signer: Ed25519PrivateKey,
) -> Grant:
    """Make a code for the step's subject, store its hash, emit ``access.temporary.granted``
    (signed): part of the approving step, so the approval and the code commit together."""
    request = step.request
    code = "".join(store.entropy.choice(ALPHABET) for _ in range(CODE_LENGTH))
    grant_id = store.entropy.identifier()
    step.connection.execute(
        temporary_access.insert().values(
            id=grant_id,
            request_id=request_id,
            tenant=request.tenant,
            subject=request.subject,
            lookup=store.box.code_hash(code, _LOOKUP_SALT),
            single_use=single_use,
            uses=0,
            created_at=request.now,
            expires_at=expires_at,
        )
    )
    event = step.emit(
        TemporaryAccessGranted(
            grant_id=grant_id,
            granted_by=granted_by,
            expires_at=expires_at,
            justification=justification,
            scope=SCOPE,
            request_id=request_id,
            single_use=single_use,
            requested_by=requested_by,
            ticket=ticket,
        ),
        signer=signer,
    )
    return Grant(grant_id, grouped(code), expires_at, single_use, event)


def redeem(store: VerifierStore, request: Request, *, code: str) -> Verdict:
    """Let the subject in with a temporary-access code, or refuse it with a reason:
    ``malformed_code``, ``unknown_code``, ``other_subject`` (a code of another subject or
    tenant), ``revoked_code``, ``expired_code``, ``used_code``."""
    typed = normalise(code)
    # not gated: the lock is what this code gets past, and an unknown subject's refusal
    # must leave no lockout row behind; the conditional UPDATE is the race guard
    with store.step(request, factor=None, gated=False) as step:
        if len(typed) != CODE_LENGTH or not set(typed) <= set(ALPHABET):
            return _refused(step, "malformed_code", None)
        row = step.connection.execute(
            sa.select(temporary_access).where(
                temporary_access.c.lookup == store.box.code_hash(typed, _LOOKUP_SALT)
            )
        ).one_or_none()
        if row is None:
            return _refused(step, "unknown_code", None)
        if (row.tenant, row.subject) != (request.tenant, request.subject):
            # another tenant's grant id is none of this tenant's business
            return _refused(step, "other_subject", None)
        reason = refusal(row, now=request.now)
        uses = _use(step, row.id, request.now) if reason is None else None
        if uses is None:
            return _refused(step, reason or "used_code", row.id)
        event = step.emit(
            TemporaryAccessUsed(
                grant_id=row.id, single_use=row.single_use, uses=uses, request_id=row.request_id
            )
        )
        return Verdict(True, None, event)


def refusal(row: sa.Row[tuple[object, ...]], *, now: datetime) -> str | None:
    """Why the stored grant ``row`` lets no one in at ``now`` (``None``: it does)."""
    if row._mapping["revoked_at"] is not None:
        return "revoked_code"
    if now >= row._mapping["expires_at"]:
        return "expired_code"
    if row._mapping["single_use"] and row._mapping["uses"] > 0:
        return "used_code"
    return None


def _use(step: Step, grant_id: str, now: datetime) -> int | None:
    """Count one use and return the count, unless the grant stopped being usable since it
    was read (``None``: a racing use took it)."""
    used = step.connection.execute(
        temporary_access.update()
        .where(
            temporary_access.c.id == grant_id,
            temporary_access.c.revoked_at.is_(None),
            temporary_access.c.expires_at > now,
            sa.or_(temporary_access.c.single_use.is_(False), temporary_access.c.uses == 0),
        )
        .values(uses=temporary_access.c.uses + 1, last_used_at=now)
        .returning(temporary_access.c.uses)
    )
    uses: int | None = used.scalar_one_or_none()
    return uses


def _refused(step: Step, reason: str, grant_id: str | None) -> Verdict:
    event = step.emit(TemporaryAccessRefused(reason=reason, grant_id=grant_id))
    return Verdict.refused(reason, event)

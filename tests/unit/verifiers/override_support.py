"""What the override tests share: administrators, a subject locked the way a guesser locks
it, and the events a store staged in its outbox (what the relay publishes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from schemas import Event
from schemas.codec import decode
from schemas.fields import Outcome, PolicyTier
from schemas.payloads import LoginAttempted
from tests.factories import CONTROL_KEY
from verifiers import override
from verifiers.override import Admin, OverrideOutcome
from verifiers.publish import outbox_events
from verifiers.store import Request, VerifierStore

ALICE = Admin("alice", is_admin=True)
BOB = Admin("bob", is_admin=True)
CAROL_AUDITOR = Admin("carol", is_admin=False)
TENANT, SUBJECT = "acme", "u-1001"


def staged(store: VerifierStore) -> list[Event]:
    """Every event in the store's outbox, in order."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_events.c.value).order_by(outbox_events.c.seq))
        return [decode(bytes(row.value)) for row in rows]


def lock(store: VerifierStore, now: datetime, *, subject: str = SUBJECT) -> None:
    """Lock ``subject`` (business tier: 5 wrong passwords) and check it is locked."""
    for second in range(5):
        request = _request(now + timedelta(seconds=second), subject)
        with store.step(request, factor=None) as step:
            step.emit(LoginAttempted(outcome=Outcome.FAILURE, method="password", reason="bad"))
    assert store.lockout(_request(now + timedelta(seconds=5), subject)).locked


def _request(now: datetime, subject: str = SUBJECT, tenant: str = TENANT) -> Request:
    return Request(
        tenant=tenant, subject=subject, correlationid="t", now=now, tier=PolicyTier.BUSINESS
    )


def sign_in_request(now: datetime, subject: str = SUBJECT, tenant: str = TENANT) -> Request:
    """A sign-in of ``subject`` at ``now`` (business tier)."""
    return _request(now, subject, tenant)


def requested(
    store: VerifierStore, now: datetime, *, by: Admin = ALICE, **options: Any
) -> OverrideOutcome:
    """A request by ``by`` (default: an unlock of :data:`SUBJECT`), signed by the test key."""
    values: dict[str, Any] = {
        "tenant": TENANT,
        "subject": SUBJECT,
        "action": "unlock",
        "justification": "Locked out on a trip; identity checked by a video call.",
        "ticket": "SEC-1234",
        "tier": PolicyTier.BUSINESS,
        **options,
    }
    return override.request_override(store, requester=by, now=now, signer=CONTROL_KEY, **values)


def approved(
    store: VerifierStore, request_id: str, now: datetime, *, by: Admin = BOB
) -> OverrideOutcome:
    return override.approve_override(
        store, request_id=request_id, approver=by, now=now, signer=CONTROL_KEY
    )

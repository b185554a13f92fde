"""Delivery receipts: what a provider later says became of a message it accepted.

``mfa.challenge.sent`` records that a gateway *accepted* a code; whether the phone got it is
only known when the provider reports it (an SMS delivery report, a call's outcome). A
receipt is recorded as its own event, ``mfa.challenge.delivery_reported``, under the
challenge's subject and sign-in transaction, found by the tenant, the provider and the
provider's message id (the tenant comes from the caller's credential: a receipt cannot
reach another tenant's challenge).

Providers use many words for the same outcome; :func:`receipt_status` maps the common ones
(Twilio, Vonage/Nexmo, MessageBird, Sinch, SMPP ``stat``) to :class:`ReceiptStatus`.
Intermediate statuses (``queued``, ``sent``, ``accepted``, ``buffered``…) are no receipt:
they are answered ``not_final`` and recorded nowhere. A receipt repeated with the same
status (providers retry their webhooks) is answered ``duplicate`` and recorded once.

Reasons: ``unknown_message`` (no challenge of the tenant has that provider and id),
``not_final``, ``unknown_status``, ``duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa

from schemas import Event
from schemas.fields import Channel, Factor, PolicyTier
from schemas.payloads import ChallengeDeliveryReported, ReceiptStatus
from verifiers.destinations import PHONE_FACTORS
from verifiers.store import Request, VerifierStore
from verifiers.tables import challenges

FINAL: Final = {
    "delivered": ReceiptStatus.DELIVERED,
    "delivrd": ReceiptStatus.DELIVERED,
    "delivered_to_handset": ReceiptStatus.DELIVERED,
    "completed": ReceiptStatus.DELIVERED,  # a voice call answered and played
    "answered": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.UNDELIVERED,
    "undeliv": ReceiptStatus.UNDELIVERED,
    "failed": ReceiptStatus.UNDELIVERED,
    "delivery_failed": ReceiptStatus.UNDELIVERED,
    "busy": ReceiptStatus.UNDELIVERED,
    "no-answer": ReceiptStatus.UNDELIVERED,
    "no_answer": ReceiptStatus.UNDELIVERED,
    "expired": ReceiptStatus.EXPIRED,
    "rejected": ReceiptStatus.REJECTED,
    "rejectd": ReceiptStatus.REJECTED,
    "blocked": ReceiptStatus.REJECTED,
    "canceled": ReceiptStatus.REJECTED,
    "deleted": ReceiptStatus.REJECTED,
}
"""Provider status words (lower-cased) that end a message's life, and what they mean."""
INTERMEDIATE: Final = frozenset(
    {
        "accepted",
        "queued",
        "sending",
        "sent",
        "scheduled",
        "buffered",
        "enroute",
        "ringing",
        "in-progress",
        "initiated",
        "submitted",
        "acceptd",
    }
)


def receipt_status(word: str) -> ReceiptStatus | None:
    """The final status a provider's ``word`` means; ``None`` for an intermediate one;
    :class:`ValueError` for a word no provider is known to use."""
    key = word.strip().lower()
    if key in FINAL:
        return FINAL[key]
    if key in INTERMEDIATE:
        return None
    raise ValueError(f"unknown delivery status {word[:32]!r}")


@dataclass(frozen=True)
class ReceiptResult:
    """What became of a receipt: ``recorded`` with its event, or why not."""

    recorded: bool
    reason: str | None = None
    status: ReceiptStatus | None = None
    challenge_id: str | None = None
    event: Event | None = None


def record_receipt(
    store: VerifierStore,
    *,
    tenant: str,
    provider: str,
    provider_message_id: str,
    status: str,
    now: datetime,
    reported_at: datetime | None = None,
) -> ReceiptResult:
    """Record the delivery receipt ``status`` (the provider's word) for the message
    ``provider_message_id`` that ``provider`` accepted for one of ``tenant``'s challenges.
    ``reported_at`` must be timezone-aware (:class:`ValueError` otherwise)."""
    if reported_at is not None and reported_at.tzinfo is None:
        raise ValueError("reported_at must be timezone-aware")
    try:
        final = receipt_status(status)
    except ValueError:
        return ReceiptResult(False, "unknown_status")
    if final is None:
        return ReceiptResult(False, "not_final")
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.select(challenges).where(
                challenges.c.tenant == tenant,
                challenges.c.provider == provider,
                challenges.c.provider_message_id == provider_message_id,
            )
        ).first()
    if row is None or row.factor not in {*PHONE_FACTORS, Factor.EMAIL}:
        return ReceiptResult(False, "unknown_message")
    data = dict(row.data or {})
    request = Request(
        tenant=tenant,
        subject=row.subject,
        correlationid=str(data.get("correlationid") or row.id),
        now=now,
        tier=PolicyTier(data.get("tier", PolicyTier.CUSTOMER.value)),
    )
    factor = Factor(row.factor)
    with store.step(request, factor=factor, gated=False) as step:
        current = step.connection.execute(
            sa.select(challenges.c.data).where(challenges.c.id == row.id)
        ).scalar_one()
        if (current or {}).get("receipt") == final.value:
            step.abandon()
            return ReceiptResult(False, "duplicate", final, row.id)
        step.connection.execute(
            challenges.update()
            .where(challenges.c.id == row.id)
            .values(data={**(current or {}), "receipt": final.value})
        )
        event = step.emit(
            ChallengeDeliveryReported(
                factor=factor,
                challenge_id=row.id,
                channel=Channel(data.get("channel", factor.value)),
                provider=provider,
                delivery_status=final,
                provider_message_id=provider_message_id,
                provider_status=status.strip()[:128] or None,
                destination_country=data.get("country"),
                reported_at=reported_at.astimezone(UTC) if reported_at else None,
            )
        )
    return ReceiptResult(True, None, final, row.id, event)

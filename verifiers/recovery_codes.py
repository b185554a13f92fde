"""Recovery codes: NIST SP 800-63B look-up secrets, single use, replaced as a set.

A set is 10 codes of 12 characters from a 32-letter alphabet without look-alikes
(60 bits each, shown as ``XXXX-XXXX-XXXX``), far above the 20 bits 800-63B §5.1.2.1
asks of rate-limited look-up secrets. Each is stored twice, neither in clear: a keyed
HMAC that finds its row, and a salted scrypt hash that verifies it. Redeeming runs in
the subject's gated step, so guesses count towards the lockout like any other factor.
"""

from __future__ import annotations

import sqlalchemy as sa

from schemas.fields import Factor
from schemas.payloads import RecoveryFailed, RecoveryRegenerated, RecoverySucceeded
from verifiers.crypto import hash_lookup_secret, verify_lookup_secret
from verifiers.store import Request, Verdict, VerifierStore
from verifiers.tables import recovery_codes

CODE_COUNT = 10
CODE_LENGTH = 12
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_LOOKUP_SALT = b"recovery-code-lookup"


def normalise(code: str) -> str:
    """What the person typed, without separators, spaces or case."""
    return "".join(ch for ch in code.upper() if ch not in "- \t")


def grouped(code: str) -> str:
    """``code`` as shown to a person: groups of four joined by ``-``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def regenerate(store: VerifierStore, request: Request) -> list[str]:
    """A new set of codes; every earlier code of the subject stops working at once.

    The returned codes are shown to the person once; nothing else ever sees them.
    """
    codes = [
        "".join(store.entropy.choice(ALPHABET) for _ in range(CODE_LENGTH))
        for _ in range(CODE_COUNT)
    ]
    set_id = store.entropy.identifier()
    with store.step(request, factor=Factor.RECOVERY_CODE, gated=False) as step:
        revoked = step.connection.execute(
            recovery_codes.update()
            .where(
                recovery_codes.c.tenant == request.tenant,
                recovery_codes.c.subject == request.subject,
                recovery_codes.c.used_at.is_(None),
                recovery_codes.c.revoked_at.is_(None),
            )
            .values(revoked_at=request.now)
        ).rowcount
        step.connection.execute(
            recovery_codes.insert(),
            [
                {
                    "tenant": request.tenant,
                    "subject": request.subject,
                    "set_id": set_id,
                    "lookup": store.box.code_hash(code, _LOOKUP_SALT),
                    "code_hash": hash_lookup_secret(code),
                    "created_at": request.now,
                }
                for code in codes
            ],
        )
        step.emit(RecoveryRegenerated(code_count=CODE_COUNT, previous_codes_invalidated=revoked))
    return [grouped(code) for code in codes]


def redeem(store: VerifierStore, request: Request, *, code: str) -> Verdict:
    """Accept one unused code of the subject's current set, once."""
    typed = normalise(code)
    with store.step(request, factor=Factor.RECOVERY_CODE) as step:
        if step.lockout.locked:
            reason = "locked_out"
        elif len(typed) != CODE_LENGTH or not set(typed) <= set(ALPHABET):
            reason = "malformed_code"
        else:
            row = step.connection.execute(
                sa.select(recovery_codes).where(
                    recovery_codes.c.tenant == request.tenant,
                    recovery_codes.c.subject == request.subject,
                    recovery_codes.c.lookup == store.box.code_hash(typed, _LOOKUP_SALT),
                )
            ).first()
            if row is None or not verify_lookup_secret(typed, row.code_hash):
                reason = "unknown_code"
            elif row.revoked_at is not None:
                reason = "revoked_code"
            elif row.used_at is not None:
                reason = "used_code"
            else:
                step.connection.execute(
                    recovery_codes.update()
                    .where(recovery_codes.c.id == row.id)
                    .values(used_at=request.now)
                )
                remaining = step.connection.execute(
                    sa.select(sa.func.count()).where(
                        recovery_codes.c.tenant == request.tenant,
                        recovery_codes.c.subject == request.subject,
                        recovery_codes.c.used_at.is_(None),
                        recovery_codes.c.revoked_at.is_(None),
                    )
                ).scalar_one()
                event = step.emit(RecoverySucceeded(codes_remaining=remaining))
                return Verdict(True, None, event)
        event = step.emit(RecoveryFailed(reason=reason))
        return Verdict.refused(reason, event, step)

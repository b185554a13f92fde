"""A ledger made in the test for evidence packs: privileged and ordinary sign-ins, with and
without MFA, enrollments, a lockout, an erasure."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.ledger import Ledger
from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Factor, LockoutScope, Outcome, PolicyTier, RiskLevel
from tests.factories import CLIENT, CONTROL_KEY
from tests.unit.audit.ledger_support import open_test_ledger

T0 = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
"""Inside 2026-Q3."""
ERASED_IP = CLIENT.ip


class Scenario:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.at = T0

    def add(self, payload: p.Payload, subject: str, login: str, tenant: str = "acme") -> Event:
        self.at += timedelta(seconds=7)
        event = new_event(
            payload,
            source="https://login.example.com/mfa",
            tenant=tenant,
            subject=subject,
            correlationid=login,
            now=self.at,
        )
        self.events.append(event)
        return event

    def sign_in(
        self, subject: str, login: str, *, tier: PolicyTier, mfa: bool | None, role: str = ""
    ) -> None:
        """Password step passed; then MFA passed (``True``), failed (``None``) or never
        asked (``False``)."""
        ctx: dict[str, Any] = {"policy_tier": tier, "client": CLIENT, "application": "payroll"}
        self.add(
            p.MfaRequired(required=True, role=role or None, risk_level=RiskLevel.LOW, **ctx),
            subject,
            login,
        )
        self.add(
            p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", **ctx), subject, login
        )
        if mfa:
            self.add(
                p.VerificationSucceeded(factor=Factor.WEBAUTHN, challenge_id=f"ch-{login}", **ctx),
                subject,
                login,
            )
        elif mfa is None:
            self.add(
                p.VerificationFailed(
                    factor=Factor.TOTP, reason="invalid_code", challenge_id=f"ch-{login}", **ctx
                ),
                subject,
                login,
            )


def scenario() -> Scenario:
    """``admin-1``: privileged, WebAuthn, MFA at sign-in, once refused at the MFA step;
    ``admin-2``: privileged (role),
    TOTP only, one sign-in without MFA; ``cust-1``: customer, MFA, locked out once;
    ``cust-2``: customer, erased later (its sealed IP must never show)."""
    s = Scenario()
    s.at = T0 - timedelta(days=40)  # enrolled before the period
    s.add(p.EnrollmentCompleted(factor=Factor.WEBAUTHN, enrollment_id="e-a1"), "admin-1", "enr-1")
    s.add(p.EnrollmentCompleted(factor=Factor.TOTP, enrollment_id="e-a2"), "admin-2", "enr-2")
    s.add(p.EnrollmentCompleted(factor=Factor.WEBAUTHN, enrollment_id="e-a2w"), "admin-2", "enr-3")
    s.at = T0
    s.add(p.EnrollmentRemoved(factor=Factor.WEBAUTHN, enrollment_id="e-a2w", reason="lost"),
          "admin-2", "enr-4")  # fmt: skip
    s.sign_in("admin-1", "l-1", tier=PolicyTier.ADMIN, mfa=True)
    s.sign_in("admin-1", "l-8", tier=PolicyTier.ADMIN, mfa=None)  # refused at MFA
    s.sign_in("admin-2", "l-2", tier=PolicyTier.BUSINESS, mfa=True, role="admin")
    s.sign_in("admin-2", "l-3", tier=PolicyTier.BUSINESS, mfa=False, role="admin")
    s.sign_in("cust-1", "l-4", tier=PolicyTier.CUSTOMER, mfa=True)
    s.sign_in("cust-2", "l-5", tier=PolicyTier.CUSTOMER, mfa=True)
    s.add(
        p.LockoutApplied(scope=LockoutScope.SUBJECT, reason="max_failures", failures=5,
                         policy_tier=PolicyTier.CUSTOMER, locked_until=s.at + timedelta(minutes=5)),
        "cust-1", "l-6",
    )  # fmt: skip
    s.sign_in("other-1", "l-7", tier=PolicyTier.ADMIN, mfa=False, role="admin")
    return s


def build_ledger(data_dir: Path, *, erase: bool = True) -> Ledger:
    """The scenario in a SQLite ledger with every entry covered by a checkpoint; ``cust-2``
    erased (in the period) when ``erase``."""
    ledger = open_test_ledger(data_dir, f"sqlite:///{data_dir / 'ledger.db'}", every=7)
    s = scenario()
    ledger.append(s.events, now=s.at)
    if erase:
        ledger.erase("acme", "cust-2", now=s.at + timedelta(minutes=1), requested_by="dpo-1",
                     signer=CONTROL_KEY, ticket="DSR-9")  # fmt: skip
    ledger.tick(now=s.at + timedelta(minutes=2), force=True)
    return ledger


def reader(data_dir: Path) -> Ledger:
    """The same ledger opened as the pack opens it: no master key, no signing key."""
    from audit.ledger import open_ledger

    return open_ledger(
        url=f"sqlite:///{data_dir / 'ledger.db'}",
        signing_key_file=None,
        master_key_file=None,
        create_keys=False,
    )


def pdf_text(pdf: bytes) -> str:
    """The text the PDF's content streams show (Flate-compressed or not)."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            stream = zlib.decompress(stream)
        except zlib.error:
            pass
        shown += re.findall(rb"\((.*?)\)\s*Tj", stream, re.DOTALL)
    return " ".join(s.decode("latin-1").replace("\\(", "(").replace("\\)", ")") for s in shown)


def drop_row(evidence: Path, finding: str = "exception") -> None:
    """Remove the first evidence row with ``finding`` from a pack's CSV (as a forger would)."""
    lines = evidence.read_text().splitlines(keepends=True)
    dropped = next(i for i, line in enumerate(lines) if f",{finding}," in line)
    evidence.write_text("".join(lines[:dropped] + lines[dropped + 1 :]))


def swap_files(a: Path, b: Path) -> tuple[str, str]:
    """Swap two files' contents (two proofs, as a forger would); their former texts."""
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text)
    b.write_text(a_text)
    return a_text, b_text

"""The controls' answers on a known scenario (pure: events in, rows out)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from compliance.controls import ControlResult, Evidence, LedgerEvent, evaluate
from compliance.periods import PeriodError, between, parse_period
from schemas import encode
from schemas import payloads as p
from schemas.fields import LockoutScope, Outcome, PolicyTier
from tests.unit.compliance.pack_support import T0, Scenario, scenario


def _evidence() -> Evidence:
    rows = [LedgerEvent(i, msgspec.json.decode(encode(e))) for i, e in enumerate(scenario().events)]
    period = parse_period("2026-Q3")

    def time(item: LedgerEvent) -> datetime:
        return datetime.fromisoformat(str(item.event["time"]))

    return Evidence(
        period=[r for r in rows if period.since <= time(r) < period.until],
        enrollments=[r for r in rows if r.type.startswith("mfa.enrollment.")],
        erased=frozenset({("acme", "cust-2")}),
    )


def _by_control(framework: str) -> dict[str, object]:
    return {c.control: c for c in evaluate(framework, _evidence())}  # type: ignore[arg-type]


def test_privileged_sign_ins_without_mfa_are_the_exceptions() -> None:
    mfa = _by_control("soc2")["CC6.1-mfa"]
    found = {(r.subject, r.finding) for r in mfa.rows}  # type: ignore[attr-defined]
    assert found == {
        ("admin-1", "ok"),
        ("admin-1", "refused"),
        ("admin-2", "ok"),
        ("admin-2", "exception"),
        ("other-1", "exception"),
    }
    assert mfa.status == "not met"  # type: ignore[attr-defined]
    assert all(r.related_event_id for r in mfa.rows if r.finding == "ok")  # type: ignore[attr-defined]


def test_phishing_resistance_is_judged_at_the_period_end_removals_counted() -> None:
    control = _by_control("soc2")["CC6.1-phishing-resistant"]
    found = {r.subject: r.finding for r in control.rows}  # type: ignore[attr-defined]
    # admin-2's WebAuthn key was removed: TOTP alone is not phishing-resistant
    assert found == {"admin-1": "ok", "admin-2": "exception", "other-1": "exception"}


def test_hipaa_covers_every_sign_in_and_erased_subjects_are_marked() -> None:
    (control,) = evaluate("hipaa", _evidence())
    assert len(control.rows) == 7 and len(control.exceptions) == 2
    assert (
        "7 sign-ins past the password step: completed MFA 4, refused at the MFA step 1"
        in control.answer
    )
    erased = {r.subject for r in control.rows if r.subject_erased}
    assert erased == {"cust-2"}


def test_gdpr_records_every_type_and_every_policy_decision() -> None:
    controls = _by_control("gdpr")
    assert len(controls["Art.30"].rows) == len({r.type for r in _evidence().period})  # type: ignore[attr-defined]
    tiers = {r.detail.split(":")[0] for r in controls["Art.32"].rows}  # type: ignore[attr-defined]
    assert tiers == {"tier admin", "tier business", "tier customer"}


def test_periods() -> None:
    q3 = parse_period("2026-q3")
    assert (q3.since, q3.until) == (
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    assert parse_period("2026-12").until == datetime(2027, 1, 1, tzinfo=UTC)
    assert q3.since <= T0 < q3.until
    for bad in ("2026-Q5", "2026-13", "Q3"):
        with pytest.raises(PeriodError):
            parse_period(bad)
    with pytest.raises(PeriodError):
        between(datetime(2026, 2, 1), datetime(2026, 1, 1))


def test_compliance_imports_only_analytics_audit_schemas() -> None:
    allowed = {"analytics", "audit", "schemas", "compliance"}
    ours = {"alerts", "sources", "verifiers", "streams", "dashboard", "factorstream"} | allowed
    for path in (Path(__file__).resolve().parents[3] / "compliance").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            for name in names:
                top = name.split(".")[0]
                assert top not in ours - allowed, f"{path} imports {name}"


def _lock(s: Scenario, subject: str, *, scope: LockoutScope, minutes: int | None) -> None:
    s.add(
        p.LockoutApplied(
            scope=scope, reason="max_failures", failures=5, policy_tier=PolicyTier.CUSTOMER,
            locked_until=None if minutes is None else s.at + timedelta(minutes=minutes),
            permanent=minutes is None,
        ),
        subject, f"lock-{subject}-{len(s.events)}",
    )  # fmt: skip


def _lockout_control(s: Scenario) -> ControlResult:
    rows = [LedgerEvent(i, msgspec.json.decode(encode(e))) for i, e in enumerate(s.events)]
    (_, _, control) = evaluate("soc2", Evidence(period=rows, enrollments=[], erased=frozenset()))
    return control


def test_a_step_granted_while_a_subject_lock_was_in_force_is_a_cc6_6_exception() -> None:
    s = Scenario()
    _lock(s, "in-lock", scope=LockoutScope.SUBJECT, minutes=30)
    s.sign_in("in-lock", "l-a", tier=PolicyTier.CUSTOMER, mfa=True)  # 7 s later: still locked
    _lock(s, "expired", scope=LockoutScope.SUBJECT, minutes=1)
    s.at += timedelta(minutes=5)
    s.sign_in("expired", "l-b", tier=PolicyTier.CUSTOMER, mfa=True)  # after the lock ended
    _lock(s, "cleared", scope=LockoutScope.SUBJECT, minutes=30)
    s.add(p.LockoutCleared(scope=LockoutScope.SUBJECT, reason="administrator"), "cleared", "c")
    s.sign_in("cleared", "l-c", tier=PolicyTier.CUSTOMER, mfa=True)  # unlocked by an admin
    _lock(s, "factor", scope=LockoutScope.FACTOR, minutes=30)
    s.sign_in("factor", "l-d", tier=PolicyTier.CUSTOMER, mfa=True)  # only one factor locked
    _lock(s, "forever", scope=LockoutScope.SUBJECT, minutes=None)
    s.at += timedelta(days=300)
    s.sign_in("forever", "l-e", tier=PolicyTier.CUSTOMER, mfa=False)  # a permanent lock
    control = _lockout_control(s)
    found = sorted((r.subject, r.type) for r in control.exceptions)
    assert found == [
        ("forever", "auth.login.attempted"),
        ("in-lock", "auth.login.attempted"),
        ("in-lock", "mfa.verification.succeeded"),
    ]
    assert control.status == "not met"
    assert "3 steps granted while locked" in control.answer
    assert all("while locked (lock of entry" in r.detail for r in control.exceptions)


def test_locks_enforced_meet_cc6_6() -> None:
    s = Scenario()
    _lock(s, "cust-9", scope=LockoutScope.SUBJECT, minutes=5)
    s.add(p.LoginAttempted(outcome=Outcome.FAILURE, method="password", reason="locked_out"),
          "cust-9", "l-x")  # fmt: skip
    control = _lockout_control(s)
    assert control.status == "met" and not control.exceptions
    assert [r.finding for r in control.rows] == ["record"]

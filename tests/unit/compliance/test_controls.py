"""The controls' answers on a known scenario (pure: events in, rows out)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from compliance.controls import Evidence, LedgerEvent, evaluate
from compliance.periods import PeriodError, between, parse_period
from schemas import encode
from tests.unit.compliance.pack_support import T0, scenario


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

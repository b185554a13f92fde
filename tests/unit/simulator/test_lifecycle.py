"""The account-lifecycle episode, through the real verifiers and in fast mode: imports,
invitations, trusted devices and the two-person override land in the lake so that the
Lifecycle page's queries answer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics import queries as q
from analytics.lake import LakeWriter
from analytics.views import connect
from factorstream.simulator.run import SimulationPlan, fast_simulation
from schemas import Event
from schemas.errors import EventDecodeError
from schemas.registry import BY_NAME, Producer
from schemas.signing import check_signature, key_id_of
from tests.unit.simulator.conftest import UNTIL, Simulate

LIFECYCLE = ("device.", "admin.override.", "access.temporary.")


def _steps(events: list[Event]) -> Counter[tuple[str, str | None]]:
    """Each lifecycle event by type and reason (a migrated seed: its source; an
    invitation: ``invited``)."""
    found: Counter[tuple[str, str | None]] = Counter()
    for event in events:
        data = event.data
        if event.type.startswith(LIFECYCLE):
            found[(event.type, getattr(data, "reason", None))] += 1
        elif getattr(data, "imported_from", None):
            found[(event.type, data.imported_from)] += 1  # type: ignore[attr-defined]
        elif getattr(data, "invited", False):
            found[(event.type, "invited")] += 1
    return found


EXPECTED = Counter(
    {
        ("mfa.enrollment.completed", "otpauth"): 4,
        ("mfa.enrollment.completed", "csv"): 2,
        ("mfa.enrollment.started", "invited"): 3,
        ("device.trusted", None): 3,
        ("device.revoked", "subject_request"): 1,
        ("device.revoked", "presented_from_other_device"): 1,
        ("device.trust_refused", "wrong_device"): 1,
        ("admin.override.requested", None): 2,
        ("admin.override.refused", "self_approval"): 1,
        ("admin.override.approved", None): 2,
        ("access.temporary.granted", None): 1,
        ("access.temporary.used", None): 1,
        ("access.temporary.refused", "used_code"): 1,
    }
)


def test_the_lifecycle_through_the_verifiers_answers_the_lifecycle_queries(
    simulate: Simulate, tmp_path: Path
) -> None:
    events = simulate(scenarios=("account_lifecycle",))
    assert _steps(events) == EXPECTED
    LakeWriter(tmp_path / "lake").write_events(events)
    with connect(tmp_path / "lake") as con:
        requests = q.override_requests(con, q.Filters(until=UNTIL))
        assert sorted(requests["outcome"]) == ["approved", "approved"]
        unlock = requests[requests["action"] == "unlock"].to_dict("records")[0]
        assert (unlock["requested_by"], unlock["approved_by"], unlock["ticket"]) == (
            "it-ann",
            "it-ben",
            "HD-1042",
        )
        assert unlock["refusal_reasons"] == "self_approval"
        invitations = q.invitation_conversion(con, q.Filters(until=UNTIL))
        assert invitations[["factor", "invited", "enrolled"]].to_dict("records") == [
            {"factor": "webauthn", "invited": 3, "enrolled": 1}  # one took it up at once
        ]
        devices = q.active_trusted_devices(con, q.Filters(until=UNTIL))
        assert devices[["trusted", "revoked", "active"]].to_dict("records") == [
            {"trusted": 3, "revoked": 2, "active": 1}
        ]


def test_fast_mode_records_the_same_lifecycle() -> None:
    plan = SimulationPlan(until=UNTIL, seed=3, users=8, days=1, scenarios=("account_lifecycle",))
    simulation, service = fast_simulation(plan)
    simulation.backfill()
    assert _steps(service.take()) == EXPECTED


def test_the_administrators_control_events_are_signed_by_the_key_the_pipeline_trusts() -> None:
    """The demo's worker accepts control events signed by its data dir's key alone: the
    simulated administrators must sign with the key they are given (unsigned or foreign
    ones go to the dead-letter topic)."""
    trusted = Ed25519PrivateKey.generate()
    plan = SimulationPlan(until=UNTIL, seed=3, users=8, days=1, scenarios=("account_lifecycle",))
    simulation, service = fast_simulation(plan, admins_key=trusted)
    simulation.backfill()
    control = [e for e in service.take() if BY_NAME[e.type].made_by is Producer.CONTROL]
    assert {e.type for e in control} >= {"admin.override.approved", "access.temporary.granted"}
    keys = {key_id_of(trusted.public_key()): trusted.public_key()}
    for event in control:
        check_signature(event, keys)  # raises unless the trusted key signed exactly this
    stranger = {key_id_of(Ed25519PrivateKey.generate().public_key()): trusted.public_key()}
    with pytest.raises(EventDecodeError):
        check_signature(control[0], stranger)

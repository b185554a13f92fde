"""Properties of the detection folds over random logs: determinism, valid derived events,
JSON round trips, bounded states, cool-downs, and windows that count like a brute force."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, decode, encode
from schemas import payloads as p
from schemas.fields import Factor, RiskLevel
from schemas.payloads import Detection
from streams.folds import (
    BY_SUBJECT,
    DETECTION_TABLES,
    SOURCE,
    DetectionThresholds,
    NetworkList,
    OtpGuessingState,
    SmsPumpingState,
    SprayState,
    fold_otp_guessing,
    fold_password_spray,
    slots,
)
from streams.folds.signals import severity_for
from tests.factories import T0
from tests.unit.streams import BERLIN, PARIS, SYDNEY, Log, Place, risk_of

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RULES = DetectionThresholds(
    cooldown=timedelta(minutes=30),
    learning_sign_ins=3,
    max_known_countries=4,  # = len(PLACES): nothing is forgotten, so new values fire once
    max_known_devices=4,
    anonymous_networks=NetworkList.parse(["192.0.2.0/25", "2001:db8::/33"], name="tor"),
    malicious_networks=NetworkList.parse(["192.0.2.128/25"], name="intel"),
    push_fatigue_count=3,
    spray_min_subjects=3,
    otp_guess_count=4,
    recovery_failure_count=2,
    recovery_success_count=2,
    sms_learning_sends=3,
    sms_unusual_count=3,
    sms_burst_count=6,
    sms_adoption_period=timedelta(hours=2),
    sms_premium_countries=frozenset({"GN"}),
    reset_window=timedelta(hours=2),
)
PLACES = [BERLIN, PARIS, SYDNEY, Place("NG", 6.5244, 3.3792, "centroid")]
IPS = ["192.0.2.5", "192.0.2.200", "198.51.100.1", "2001:db8::1", "::ffff:192.0.2.130"]
KINDS = [
    "sign_in",
    "login_failed",
    "rejected",
    "expired",
    "approved",
    "wrong_code",
    "locked_out",
    "recovery_failed",
    "recovery_used",
    "sms",
    "clone",
    "removed",
    "regenerated",
    "risk",
    "idp_risk",
]
steps = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 2),  # subject
        st.integers(0, len(PLACES) - 1),
        st.integers(0, len(IPS) - 1),
        st.sampled_from([0, 1, 20, 60, 300, 900, 1800, 7200]),  # seconds since the previous
        st.integers(1, 4),  # how many such events in a row
    ),
    max_size=30,
)
Action = tuple[str, int, int, int, int, int]


def build(actions: list[Action]) -> list[Event]:
    expanded = [(k, who, where, ip, gap) for k, who, where, ip, gap, n in actions for _ in range(n)]
    log, at, events = Log(), T0, []
    for kind, who, where, ip, gap in expanded:
        at += timedelta(seconds=gap)
        subject = f"u-{who}"
        tenant = "acme" if who < 2 else "globex"
        log.tenant = tenant
        place = PLACES[where]
        if kind == "sign_in":
            event = log.sign_in(at, place, device=f"dev-{where}", ip=IPS[ip], subject=subject)
        elif kind == "login_failed":
            event = log.login(at, ip=IPS[ip], subject=subject)
        elif kind in ("rejected", "expired", "approved"):
            event = log.push(at, kind)
        elif kind in ("wrong_code", "locked_out"):
            reason = "invalid_code" if kind == "wrong_code" else "locked_out"
            event = log.code(at, [Factor.SMS, Factor.TOTP][ip % 2], reason)
        elif kind == "recovery_failed":
            event = log.recovery(at)
        elif kind == "recovery_used":
            event = log.recovery(at, None)
        elif kind == "sms":
            event = log.sms(at, ["DE", "FR", "NG", "GN"][where], subject=subject)
        elif kind == "clone":
            event = log.webauthn(at, ok=ip % 2 == 0, count=1, previous=3, enrollment=f"k-{ip}")
        elif kind == "removed":
            event = log.removed(at)
        elif kind == "regenerated":
            event = log.regenerated(at)
        elif kind == "idp_risk":
            level = [RiskLevel.NONE, RiskLevel.LOW, RiskLevel.HIGH, RiskLevel.CRITICAL][where % 4]
            event = log.event(p.IdpRiskReported(provider="entra", level=level), at)
        else:
            event = log.risk(at, list(Detection)[ip], RiskLevel.HIGH, 70)
        events.append(event)
    return events


def run(events: list[Event]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, Event]]]:
    """Every detection table over the log, as the stream runs them: tables of JSON states and
    (key, derived event) pairs. States are checked to round-trip and to stay bounded."""
    tables: dict[str, dict[str, Any]] = {table.name: {} for table in DETECTION_TABLES}
    derived: list[tuple[str, Event]] = []
    for event in events:
        for table in DETECTION_TABLES:
            key = table.key(event)
            if key is None:
                continue
            stored = tables[table.name].get(key)
            state = table.empty() if stored is None else table.load(stored)
            state, found = table.fold(state, event, RULES)
            as_json = json.loads(json.dumps(state.to_dict()))
            assert table.load(as_json) == state
            assert_bounded(state)
            tables[table.name][key] = as_json
            derived += [(f"{table.name}:{key}", e) for e in found]
    return tables, derived


def assert_bounded(state: Any) -> None:
    if hasattr(state, "travel"):  # SubjectDetections
        assert len(state.countries.known) <= RULES.max_known_countries
        assert len(state.devices.known) <= RULES.max_known_devices
        assert len(state.push.marks) <= RULES.push_fatigue_count
        assert len(state.otp.wrong_codes.marks) <= RULES.otp_guess_count
        assert len(state.recovery.failures.marks) <= RULES.recovery_failure_count
        assert len(state.recovery.successes.marks) <= RULES.recovery_success_count
        assert len(state.cloning.fired) <= 16 and len(state.reset.risks) <= 10
    elif isinstance(state, SmsPumpingState):
        grid = slots.make_grid(RULES.sms_window, RULES.cooldown)
        assert len(state.slots) <= grid.late + grid.span + 1 and len(state.countries) <= 4
        assert len(state.early) <= RULES.sms_learning_sends
    else:
        assert isinstance(state, SprayState)
        grid = slots.make_grid(RULES.spray_window, RULES.cooldown)
        held = [*state.subjects.labels, *state.subjects.full]
        assert len(held) <= grid.late + grid.span + 1
        assert all(
            len(labels) < RULES.spray_min_subjects for labels in state.subjects.labels.values()
        )


def dedupe_key(event: Event) -> str:
    """What one cool-down covers: detection, plus the rule or credential where they differ."""
    risk = risk_of(event)
    evidence = risk.evidence
    part = evidence.get("pattern") or evidence.get("rule") or evidence.get("enrollment_id")
    if "approved_after_seconds" in evidence:
        part = "approved"
    return f"{risk.detection}/{part}"


@PROPERTY
@given(steps)
def test_replays_are_deterministic_and_derived_events_are_valid(
    actions: list[Action],
) -> None:
    events = build(actions)
    first, second = run(events), run(events)
    assert first == second
    _tables, derived = first
    assert len({e.id for _, e in derived}) == len(derived)
    by_id = {e.id: e for e in events}
    for key, event in derived:
        assert decode(encode(event)) == event
        risk = risk_of(event)
        assert event.source == SOURCE and event.type == "risk.detected"
        assert risk.severity is severity_for(risk.score) and 0 < risk.score <= 100
        if key.startswith(f"{BY_SUBJECT.name}:"):  # derived from one trigger
            assert 0 < len(risk.related_event_ids) <= RULES.max_related_events
            trigger = by_id[risk.related_event_ids[-1]]
            assert (event.time, event.correlationid) == (trigger.time, trigger.correlationid)
        else:  # keyed by IP or tenant: a function of key, period and tenant alone
            assert risk.related_event_ids == [] and event.correlationid == event.id
            assert event.time.timestamp() % RULES.cooldown.total_seconds() == 0
        for value in risk.evidence.values():
            assert not (isinstance(value, str) and value in IPS)  # personal data stays in client


@PROPERTY
@given(steps)
def test_a_detection_fires_again_for_a_key_only_after_its_cooldown(
    actions: list[Action],
) -> None:
    _tables, derived = run(build(actions))
    last: dict[str, Any] = {}
    once: set[str] = set()
    for key, event in derived:
        risk = risk_of(event)
        if risk.detection is Detection.IDP_REPORTED:
            continue  # the provider's verdict on each sign-in: one per report, no cooldown
        if risk.detection in (Detection.NEW_COUNTRY, Detection.NEW_DEVICE):
            device = risk.client.device if risk.client is not None else None
            value = risk.evidence.get("country") or (device.id if device else None)
            assert value is not None
            assert f"{key}/{risk.detection}/{value}" not in once
            once.add(f"{key}/{risk.detection}/{value}")
            continue
        rule = f"{key}/{event.tenant}/{dedupe_key(event)}"  # spray: one per tenant
        if rule in last:
            assert event.time - last[rule] >= RULES.cooldown, rule
        last[rule] = event.time


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 30 * 60)), max_size=50))
def test_windows_count_exactly_like_a_brute_force(steps_: list[tuple[int, int]]) -> None:
    """The bounded windows decide as if every event were kept (OTP and spray)."""
    log, at = Log(), T0
    otp, spray = OtpGuessingState(), SprayState()
    history: list[tuple[Any, str]] = []
    otp_fired = None
    spray_fired: set[int] = set()
    grid = slots.make_grid(RULES.spray_window, RULES.cooldown)
    for who, gap in steps_:
        at += timedelta(seconds=gap)
        subject = f"u-{who}"
        history.append((at, subject))
        inside = [(t, s) for t, s in history if at - t <= RULES.otp_guess_window]
        otp, found = fold_otp_guessing(otp, log.code(at), RULES)
        expected = len(inside) >= RULES.otp_guess_count and (
            otp_fired is None or at - otp_fired >= RULES.cooldown
        )
        assert bool(found) is expected
        otp_fired = at if found else otp_fired
        spray, found = fold_password_spray(
            spray, log.login(at, ip="192.0.2.77", subject=subject), RULES
        )
        # spray: the whole minutes overlapping the window, once per period of the cool-down
        slot = grid.slot_of(at)
        subjects = {s for t, s in history if slot - grid.span <= grid.slot_of(t) <= slot}
        period = grid.period_of(slot)
        expected = len(subjects) >= RULES.spray_min_subjects and period not in spray_fired
        assert bool(found) is expected
        spray_fired |= {period} if found else set()


def test_the_property_logs_do_fire_every_detection() -> None:
    """The generator can exercise every detection: one fixed log of it fires them all."""
    actions: list[Action] = [("sign_in", 0, 0, 2, 60, 3), ("sign_in", 0, 2, 0, 60, 1)]
    actions += [("sign_in", 0, 3, 1, 60, 1)]
    actions += [("rejected", 0, 0, 0, 10, 3), ("approved", 0, 0, 0, 10, 1)]
    actions += [("login_failed", s, 0, 2, 10, 1) for s in range(3)]
    actions += [("wrong_code", 0, 0, 0, 10, 4), ("recovery_failed", 0, 0, 0, 10, 2)]
    actions += [("sms", 0, 0, 0, 10, 3), ("sms", 0, 2, 0, 10, 3)]
    actions += [("clone", 0, 0, 0, 10, 1), ("removed", 0, 0, 0, 10, 1)]
    actions += [("idp_risk", 0, 2, 0, 10, 1)]
    _tables, derived = run(build(actions))
    assert {risk_of(e).detection for _, e in derived} == set(Detection)

"""Each detection's rule at its boundaries: thresholds, windows, cool-downs, evidence."""

from __future__ import annotations

import ast
import ipaddress
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import Event
from schemas import payloads as p
from schemas.fields import Factor, RiskLevel
from schemas.payloads import Detection
from streams.folds import (
    BY_IP,
    BY_SUBJECT,
    BY_TENANT,
    DETECTION_TABLES,
    SOURCE,
    CloningState,
    DetectionThresholds,
    FactorResetState,
    FamiliarityState,
    NetworkList,
    OtpGuessingState,
    PushFatigueState,
    RecoveryAbuseState,
    ReputationState,
    SmsPumpingState,
    SprayState,
    SubjectDetections,
    TravelState,
    fold_cloned_authenticator,
    fold_detections,
    fold_factor_reset_after_risk,
    fold_impossible_travel,
    fold_ip_reputation,
    fold_new_country,
    fold_new_device,
    fold_otp_guessing,
    fold_push_fatigue,
    fold_recovery_code_abuse,
    haversine_km,
    sms_pumping_key,
    spray_key,
    subject_key,
)
from streams.folds.window import duration_text
from tests.factories import T0, sample_event
from tests.unit.streams import (
    BERLIN,
    DAY,
    HOUR,
    MINUTE,
    NEW_YORK,
    PARIS,
    SECOND,
    SYDNEY,
    Log,
    Place,
    detections,
    replay,
    risk_of,
)

DEFAULT = DetectionThresholds()


def only(derived: list[Event]) -> p.RiskDetected:
    assert len(derived) == 1, detections(derived)
    return risk_of(derived[0])


# -- impossible travel ------------------------------------------------------------------


def test_haversine_matches_known_distances() -> None:
    assert haversine_km(0, 0, 1, 0) == pytest.approx(111.19, abs=0.01)  # a degree of latitude
    assert haversine_km(*BERLIN[1:3], *PARIS[1:3]) == pytest.approx(877.5, abs=0.5)
    assert haversine_km(*NEW_YORK[1:3], *SYDNEY[1:3]) == pytest.approx(15_990, rel=0.01)
    assert haversine_km(10, 20, 10, 20) == 0.0
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20_015, rel=0.001)  # antipodes


def _trip(speed: float, *, start: Place = BERLIN, end: Place = PARIS) -> list[Event]:
    log = Log()
    km = haversine_km(start.latitude, start.longitude, end.latitude, end.longitude)
    return [log.sign_in(T0, start), log.sign_in(T0 + km / speed * HOUR, end)]


@pytest.mark.parametrize(
    ("speed", "fires"), [(850, False), (899.9, False), (900.5, True), (950, True)]
)
def test_impossible_travel_fires_above_the_speed_limit(speed: float, fires: bool) -> None:
    events = _trip(speed)
    _, derived = replay(fold_impossible_travel, TravelState(), events, DEFAULT)
    assert detections(derived) == (["impossible_travel"] if fires else [])
    if fires:
        risk = only(derived)
        assert risk.evidence["speed_kmh"] == pytest.approx(speed, abs=0.2)
        assert risk.evidence["distance_km"] == pytest.approx(877.5, abs=0.5)
        assert (risk.evidence["from_country"], risk.evidence["to_country"]) == ("DE", "FR")
        assert (risk.evidence["from_latitude"], risk.evidence["from_longitude"]) == (
            BERLIN.latitude,
            BERLIN.longitude,
        )
        assert risk.related_event_ids == [events[0].id, events[1].id]
        assert risk.severity is RiskLevel.HIGH and risk.score == 70
        assert risk.client == events[1].data.client  # type: ignore[attr-defined]


def test_impossible_travel_score_grows_with_speed_but_stays_high() -> None:
    scores = []
    for speed in (1_000, 1_850, 3_700, 50_000):
        _, derived = replay(fold_impossible_travel, TravelState(), _trip(speed), DEFAULT)
        scores.append(only(derived).score)
    assert scores == [71, 80, 85, 85]


def test_impossible_travel_respects_the_minimum_distance() -> None:
    near = Place("DE", BERLIN.latitude + 99 / 111.19, BERLIN.longitude)
    far = Place("DE", BERLIN.latitude + 101 / 111.19, BERLIN.longitude)
    for place, fires in ((near, False), (far, True)):
        log = Log()
        events = [log.sign_in(T0, BERLIN), log.sign_in(T0 + MINUTE, place)]
        _, derived = replay(fold_impossible_travel, TravelState(), events, DEFAULT)
        assert bool(derived) is fires


def test_impossible_travel_floors_the_elapsed_time() -> None:
    """Two sign-ins at one instant 200 km apart: 200 km/min, not infinity."""
    log = Log()
    north = Place("DE", BERLIN.latitude + 200 / 111.19, BERLIN.longitude)
    events = [log.sign_in(T0, BERLIN), log.sign_in(T0, north)]
    _, derived = replay(fold_impossible_travel, TravelState(), events, DEFAULT)
    assert only(derived).evidence["speed_kmh"] == pytest.approx(12_000, rel=0.01)
    assert only(derived).evidence["elapsed_seconds"] == 0


def test_impossible_travel_cools_down_but_keeps_moving_the_reference() -> None:
    log = Log()
    places = [BERLIN, SYDNEY, BERLIN, SYDNEY, BERLIN]
    times = [T0 + m * MINUTE for m in (0, 30, 60, 80, 95)]
    events = [log.sign_in(t, place) for t, place in zip(times, places, strict=True)]
    state, derived = replay(fold_impossible_travel, TravelState(), events, DEFAULT)
    assert [e.time for e in derived] == [times[1], times[4]]  # 65 min after the first firing
    assert state.last is not None and state.last.event_id == events[-1].id


def test_impossible_travel_ignores_sign_ins_still_needing_mfa() -> None:
    log = Log()
    pending = p.LoginAttempted(outcome="success", method="password", mfa_required=True)  # type: ignore[arg-type]
    events = [log.sign_in(T0, BERLIN), log.event(pending, T0 + MINUTE)]
    state, derived = replay(fold_impossible_travel, TravelState(), events, DEFAULT)
    assert derived == [] and state.last is not None and state.last.event_id == events[0].id


# -- new country, new device ------------------------------------------------------------


def test_new_country_fires_once_per_country_and_evicts_the_least_recent() -> None:
    rules = DetectionThresholds(learning_sign_ins=1, max_known_countries=2)
    log = Log()
    places = [BERLIN, PARIS, PARIS, SYDNEY, BERLIN]  # Berlin forgotten when Sydney arrives
    events = [log.sign_in(T0 + i * DAY, place) for i, place in enumerate(places)]
    state, derived = replay(fold_new_country, FamiliarityState(), events, rules)
    assert [risk_of(e).evidence["country"] for e in derived] == ["FR", "AU", "DE"]
    assert [country for country, _ in state.known] == ["AU", "DE"]


def test_one_login_transaction_counts_once_towards_learning() -> None:
    log = Log()
    events = [log.sign_in(T0 + i * MINUTE, correlationid="login-a") for i in range(12)]
    state, _ = replay(fold_new_country, FamiliarityState(), events, DEFAULT)
    assert state.sign_ins == 1
    assert not state.learning_over(T0 + DAY, DEFAULT)


def test_new_device_needs_a_device_id_and_keeps_its_id_out_of_the_evidence() -> None:
    log = Log()
    events = [log.sign_in(T0 + i * HOUR) for i in range(10)]
    events += [log.sign_in(T0 + DAY, device=None), log.sign_in(T0 + 2 * DAY, device="dev-77")]
    state, derived = replay(fold_new_device, FamiliarityState(), events, DEFAULT)
    risk = only(derived)
    assert "dev-77" not in json.dumps(risk.evidence) and "dev-77" in risk.summary + str(risk.client)
    assert [d for d, _ in state.known] == ["dev-1", "dev-77"]


# -- anonymous or malicious IP ----------------------------------------------------------

LISTS = DetectionThresholds(
    anonymous_networks=NetworkList.parse(["185.220.100.0/22", "2a0b:f4c0::/32"], name="tor"),
    malicious_networks=NetworkList.parse(["185.220.101.0/24 # also bad"], name="intel"),
)


def test_an_ip_on_both_lists_fires_both_and_each_cools_down_alone() -> None:
    log = Log()
    events = [log.login(T0, ip="185.220.101.9"), log.login(T0 + MINUTE, ip="185.220.100.1")]
    events.append(log.login(T0 + HOUR, ip="185.220.101.10"))
    _, derived = replay(fold_ip_reputation, ReputationState(), events, LISTS)
    assert detections(derived) == ["anonymous_ip", "malicious_ip", "anonymous_ip", "malicious_ip"]
    assert [e.time for e in derived] == [T0, T0, T0 + HOUR, T0 + HOUR]
    assert len({e.id for e in derived}) == 4


def test_ip_reputation_scores_success_higher_and_ignores_other_events() -> None:
    log = Log()
    _, failed = fold_ip_reputation(ReputationState(), log.login(T0, ip="2a0b:f4c0::9"), LISTS)
    _, passed = fold_ip_reputation(ReputationState(), log.sign_in(T0, ip="2a0b:f4c0::9"), LISTS)
    assert (only(failed).score, only(passed).score) == (40, 55)
    sent = sample_event("mfa.challenge.sent")
    assert fold_ip_reputation(ReputationState(), sent, LISTS) == (ReputationState(), [])


def test_network_list_parses_operator_files() -> None:
    text = "# tor exits\n\n192.0.2.1\n198.51.100.7/24  # host bits\n2001:db8::/32\n192.0.2.1\n"
    networks = NetworkList.parse(text.splitlines(), name="tor")
    assert [str(n) for n in networks.networks] == [
        "192.0.2.1/32",
        "198.51.100.0/24",
        "2001:db8::/32",
    ]
    assert len(networks) == 3
    assert networks.match(ipaddress.ip_address("198.51.100.200")) == ipaddress.ip_network(
        "198.51.100.0/24"
    )
    assert networks.match(ipaddress.ip_address("2001:db8:ffff::1")) is not None
    assert networks.match(ipaddress.ip_address("::c000:201")) is None  # v6 is not v4
    nested = NetworkList.parse(["10.0.0.0/8", "10.1.0.0/16", "0.0.0.0/0"])
    assert str(nested.match(ipaddress.ip_address("10.1.2.3"))) == "10.1.0.0/16"
    assert str(nested.match(ipaddress.ip_address("11.1.2.3"))) == "0.0.0.0/0"
    with pytest.raises(ValueError, match="tor line 2: expected an IP address or CIDR network"):
        NetworkList.parse(["192.0.2.1", "not-an-ip"], name="tor")


# -- push fatigue -----------------------------------------------------------------------


@pytest.mark.parametrize(("span", "fires"), [(10 * MINUTE, True), (10 * MINUTE + SECOND, False)])
def test_push_fatigue_window_includes_its_boundary(span: timedelta, fires: bool) -> None:
    log = Log()
    times = [T0, T0 + MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE, T0 + span]
    events = [log.push(t, "rejected") for t in times]
    _, derived = replay(fold_push_fatigue, PushFatigueState(), events, DEFAULT)
    assert detections(derived) == (["push_fatigue"] if fires else [])


def test_push_fatigue_reports_one_approval_and_only_within_the_window() -> None:
    log = Log()
    events = [log.push(T0 + i * MINUTE, "expired") for i in range(5)]
    events += [log.push(T0 + 14 * MINUTE, "approved"), log.push(T0 + 14 * MINUTE, "approved")]
    state, derived = replay(fold_push_fatigue, PushFatigueState(), events, DEFAULT)
    assert [r.severity for r in map(risk_of, derived)] == [RiskLevel.MEDIUM, RiskLevel.CRITICAL]
    assert risk_of(derived[1]).evidence["approved_after_seconds"] == 600
    later = log.push(T0 + 14 * MINUTE + SECOND, "approved")
    fresh, _ = replay(fold_push_fatigue, PushFatigueState(), events[:5], DEFAULT)
    assert fold_push_fatigue(fresh, later, DEFAULT)[1] == []  # 10 min 1 s after the firing
    assert len(state.marks) <= DEFAULT.push_fatigue_count


def test_push_fatigue_fires_again_after_the_cooldown_while_it_persists() -> None:
    log = Log()
    events = [log.push(T0 + i * 2 * MINUTE, "rejected") for i in range(40)]  # 78 min
    _, derived = replay(fold_push_fatigue, PushFatigueState(), events, DEFAULT)
    assert [e.time - T0 for e in derived] == [8 * MINUTE, 68 * MINUTE]


# -- password spray ---------------------------------------------------------------------


# The rule itself: test_spray.py (and test_partition_order.py).


def test_spray_key_is_the_normalised_ip_of_a_failed_login() -> None:
    log = Log()
    assert spray_key(log.login(T0, ip="::ffff:192.0.2.1")) == "192.0.2.1"
    assert spray_key(log.login(T0, ip="2001:DB8:0:0::1")) == "2001:db8::1"
    assert spray_key(log.login(T0, ok=True)) is None
    assert spray_key(log.code(T0)) is None


# -- OTP guessing, recovery codes -------------------------------------------------------


@pytest.mark.parametrize(("wrong", "fires"), [(9, False), (10, True)])
def test_otp_guessing_counts_wrong_codes_across_factors(wrong: int, fires: bool) -> None:
    log = Log()
    factors = [Factor.SMS, Factor.TOTP, Factor.EMAIL, Factor.VOICE]
    events = [log.code(T0 + i * 5 * MINUTE, factors[i % 4]) for i in range(wrong)]
    events += [log.code(T0 + 50 * MINUTE, Factor.WEBAUTHN, "invalid_signature")]
    _, derived = replay(fold_otp_guessing, OtpGuessingState(), events, DEFAULT)
    assert detections(derived) == (["otp_guessing"] if fires else [])
    if fires:
        assert only(derived).evidence["by_factor"] == "email=2,sms=3,totp=3,voice=2"


def test_otp_guessing_reasons_are_configurable() -> None:
    rules = DetectionThresholds(otp_guess_count=2, otp_guess_reasons=frozenset({"malformed_code"}))
    log = Log()
    events = [log.code(T0, reason="malformed_code"), log.code(T0 + MINUTE, reason="malformed_code")]
    assert detections(replay(fold_otp_guessing, OtpGuessingState(), events, rules)[1]) == [
        "otp_guessing"
    ]


def test_recovery_failures_and_successes_cool_down_separately() -> None:
    log = Log()
    events = [log.recovery(T0 + i * MINUTE) for i in range(4)]
    events += [log.recovery(T0 + (5 + i) * MINUTE, None) for i in range(3)]
    _, derived = replay(fold_recovery_code_abuse, RecoveryAbuseState(), events, DEFAULT)
    assert [risk_of(e).evidence["pattern"] for e in derived] == ["failures", "successes"]
    assert [risk_of(e).severity for e in derived] == [RiskLevel.HIGH, RiskLevel.MEDIUM]


# -- SMS pumping ------------------------------------------------------------------------


def test_sms_pumping_is_keyed_by_tenant() -> None:
    log = Log()
    assert sms_pumping_key(log.sms(T0, "DE", subject="u-9", tenant="globex")) == "globex"
    assert sms_pumping_key(log.code(T0)) is None


# The rules themselves: test_pumping.py (and test_partition_order.py).


# -- cloned authenticator ---------------------------------------------------------------


def test_cloned_authenticator_cools_down_per_credential() -> None:
    log = Log()
    events = [
        log.webauthn(T0, ok=False, count=1, previous=5, enrollment="key-a"),
        log.webauthn(T0 + MINUTE, ok=False, count=1, previous=5, enrollment="key-a"),
        log.webauthn(T0 + 2 * MINUTE, ok=True, count=4, previous=4, enrollment="key-b"),
    ]
    state, derived = replay(fold_cloned_authenticator, CloningState(), events, DEFAULT)
    assert [risk_of(e).evidence["enrollment_id"] for e in derived] == ["key-a", "key-b"]
    assert [risk_of(e).score for e in derived] == [70, 90]
    assert [k for k, _ in state.fired] == ["key-a", "key-b"]


def test_other_failures_are_not_clones() -> None:
    log = Log()
    other = log.event(p.VerificationFailed(factor=Factor.WEBAUTHN, reason="invalid_signature"), T0)
    assert fold_cloned_authenticator(CloningState(), other, DEFAULT) == (CloningState(), [])


# -- factor reset after risk ------------------------------------------------------------


def test_factor_reset_ignores_a_risk_seen_twice_and_risks_after_the_removal() -> None:
    log = Log()
    risk = log.risk(T0, Detection.IMPOSSIBLE_TRAVEL, RiskLevel.HIGH, 80)
    later = log.risk(T0 + 2 * HOUR, Detection.MALICIOUS_IP, RiskLevel.CRITICAL, 95)
    events = [risk, risk, later, log.removed(T0 + HOUR)]
    state, derived = replay(fold_factor_reset_after_risk, FactorResetState(), events, DEFAULT)
    result = only(derived)
    assert result.evidence["risk_detection"] == "impossible_travel"
    assert result.evidence["risks_in_window"] == 1 and result.score == 90
    assert result.related_event_ids == [risk.id, events[-1].id]
    assert len(state.risks) == 2


def test_fold_detections_feeds_its_own_risks_to_the_reset_rule() -> None:
    rules = DetectionThresholds(
        malicious_networks=NetworkList.parse(["203.0.113.0/24"], name="intel")
    )
    log = Log()
    events = [log.sign_in(T0), log.regenerated(T0 + HOUR)]
    state, derived = replay(fold_detections, SubjectDetections(), events, rules)
    assert detections(derived) == ["malicious_ip", "factor_reset_after_risk"]
    again, more = fold_detections(state, derived[0], rules)  # the risk delivered back
    assert (again, more) == (state, [])


# -- keys, tables, thresholds, states ---------------------------------------------------


def test_detection_tables_store_plain_json_and_route_by_key() -> None:
    log = Log()
    events = [log.login(T0 + i * MINUTE, ip="192.0.2.5", subject=f"u-{i}") for i in range(10)]
    tables: dict[str, dict[str, Any]] = {table.name: {} for table in DETECTION_TABLES}
    derived: list[Event] = []
    for event in events:
        for table in DETECTION_TABLES:
            key = table.key(event)
            if key is None:
                continue
            stored = tables[table.name].get(key)
            before = table.empty() if stored is None else table.load(stored)
            after, found = table.fold(before, event, DEFAULT)
            if after is not before:
                tables[table.name][key] = json.loads(json.dumps(after.to_dict()))
            derived += found
    assert detections(derived) == ["password_spray"]
    assert set(tables[BY_IP.name]) == {"192.0.2.5"} and tables[BY_TENANT.name] == {}
    assert tables[BY_SUBJECT.name] == {}  # failed logins touch no per-subject detection
    assert subject_key(events[0]) == "acme/u-0"
    assert all(e.source == SOURCE and e.type == "risk.detected" for e in derived)


def test_an_unchanged_state_comes_back_as_the_very_object() -> None:
    log = Log()
    state, _ = BY_SUBJECT.fold(BY_SUBJECT.empty(), log.sign_in(T0), DEFAULT)
    again, derived = BY_SUBJECT.fold(state, sample_event("mfa.required"), DEFAULT)
    assert again is state and derived == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cooldown": timedelta(0)}, "cooldown: expected a timedelta"),
        ({"spray_window": timedelta(days=2)}, "spray_window: expected a burst window"),
        ({"push_fatigue_count": 0}, "push_fatigue_count: expected an integer in 1..10000"),
        ({"spray_min_subjects": True}, "spray_min_subjects: expected an integer"),
        ({"travel_max_speed_kmh": 0}, "travel_max_speed_kmh: expected a speed > 0"),
        ({"travel_min_distance_km": float("nan")}, "travel_min_distance_km: expected a finite"),
        ({"sms_premium_countries": frozenset({"gn"})}, "sms_premium_countries"),
        ({"anonymous_networks": ["10.0.0.0/8"]}, "anonymous_networks: expected a NetworkList"),
        ({"reset_min_severity": "severe"}, "'severe' is not a valid RiskLevel"),
    ],
)
def test_thresholds_refuse_nonsense(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectionThresholds(**changes)


def test_thresholds_accept_plain_values_from_settings() -> None:
    rules = DetectionThresholds(
        travel_max_speed_kmh=1000,
        reset_min_severity="high",  # type: ignore[arg-type]
        sms_premium_countries=frozenset({"GN"}),
    )
    assert rules.travel_max_speed_kmh == 1000.0 and isinstance(rules.travel_max_speed_kmh, float)
    assert rules.reset_min_severity is RiskLevel.HIGH
    assert hash(rules) == hash(DetectionThresholds(**{**rules.__dict__}))


STATES: list[Any] = [
    TravelState,
    FamiliarityState,
    ReputationState,
    PushFatigueState,
    OtpGuessingState,
    RecoveryAbuseState,
    SprayState,
    SmsPumpingState,
    CloningState,
    FactorResetState,
    SubjectDetections,
]


@pytest.mark.parametrize("kind", STATES, ids=lambda k: k.__name__)
def test_fresh_states_round_trip_and_refuse_another_version(kind: Any) -> None:
    assert kind.from_dict(kind().to_dict()) == kind()
    version = kind().to_dict()["version"]
    with pytest.raises(ValueError, match=f"version: expected {version}"):
        kind.from_dict(kind().to_dict() | {"version": version + 1})


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    [
        (SprayState, {"slots": [["1", ["acme/u-1"]]]}, r"slots: expected \[\[slot"),
        (SprayState, {"fired": ["1"]}, "fired: expected a list of integers"),
        (TravelState, {"last": {"latitude": "52"}}, "last: expected numeric coordinates"),
        (FamiliarityState, {"sign_ins": -1}, "sign_ins: expected an integer >= 0"),
        (FamiliarityState, {"known": []}, "known: expected an object"),
        (SmsPumpingState, {"slots": [[1, 2]]}, "slots: expected"),
        (PushFatigueState, {"approval_reported": "no"}, "approval_reported: expected true"),
        (FactorResetState, {"risks": [["2026-11-02T09:30:00+00:00", "i", "x"]]}, "detection:score"),
        (SubjectDetections, {"push": []}, "push: expected an object"),
    ],
)
def test_states_refuse_malformed_values(kind: Any, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kind.from_dict(kind().to_dict() | changes)


def test_erasing_a_subject_forgets_its_detection_state() -> None:
    log = Log()
    state, _ = replay(fold_detections, SubjectDetections(), [log.sign_in(T0)], DEFAULT)
    assert state.travel.last is not None and state.devices.known
    erased = log.event(p.SubjectErased(requested_by="dpo-1", reason="gdpr_art17"), T0 + DAY)
    assert fold_detections(state, erased, DEFAULT) == (SubjectDetections(), [])


def test_a_subject_state_stored_before_a_detection_existed_still_loads() -> None:
    stored = SubjectDetections().to_dict()
    del stored["cloning"]
    assert SubjectDetections.from_dict(stored) == SubjectDetections()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (59, "59 s"),
        (600, "10 min"),
        (3 * 3600, "3 h"),
        (3 * 3600 + 300, "3 h 5 min"),
        (86400 * 3, "3 d"),
    ],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text


FORBIDDEN_MODULES = {"faust", "aiokafka", "kafka", "duckdb", "dash", "mode", "os", "time"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "environ", "getenv"}


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[3] / "streams" / "folds").glob("*.py")),
    ids=lambda path: path.name,
)
def test_folds_import_no_io_and_never_read_the_clock(path: Path) -> None:
    """docs/design.md, "The house": no faust, Kafka, DuckDB, Dash, os.environ or clock here."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            if isinstance(node, ast.Attribute):
                assert node.attr not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno}"
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}: {name}"

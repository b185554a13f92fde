"""Golden replays: every detection over recorded ``.jsonl`` scenarios, firing and near misses.

Each ``golden/NAME.jsonl`` is a log (one CloudEvent per line); ``NAME.expected.json`` says
which fold replays it, the threshold overrides, the detections that must come out (``[]``
for a near miss), and the exact derived events and final state. The replay is
``functools.reduce`` over the decoded lines. ``python -m tests.unit.streams.
test_detections_golden`` rewrites the files from :func:`golden_scenarios`, refusing any
scenario whose detections differ from its stated intent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from schemas import Event, decode, encode
from schemas import payloads as p
from schemas.fields import Factor, RiskLevel
from schemas.payloads import Detection
from streams.folds import (
    CloningState,
    FactorResetState,
    FamiliarityState,
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
    fold_password_spray,
    fold_push_fatigue,
    fold_recovery_code_abuse,
    fold_sms_pumping,
    haversine_km,
)
from tests.factories import T0
from tests.unit.streams import (
    AUSTRALIA_CENTROID,
    BERLIN,
    DAY,
    GERMANY_CENTROID,
    HOUR,
    MINUTE,
    PARIS,
    POTSDAM,
    SECOND,
    SYDNEY,
    Log,
    detections,
    replay,
    thresholds_from,
)

GOLDEN = Path(__file__).parent / "golden"

FOLDS: dict[str, tuple[Callable[..., Any], Callable[[], Any]]] = {
    "impossible_travel": (fold_impossible_travel, TravelState),
    "new_country": (fold_new_country, FamiliarityState),
    "new_device": (fold_new_device, FamiliarityState),
    "ip_reputation": (fold_ip_reputation, ReputationState),
    "push_fatigue": (fold_push_fatigue, PushFatigueState),
    "password_spray": (fold_password_spray, SprayState),
    "otp_guessing": (fold_otp_guessing, OtpGuessingState),
    "recovery_code_abuse": (fold_recovery_code_abuse, RecoveryAbuseState),
    "sms_pumping": (fold_sms_pumping, SmsPumpingState),
    "cloned_authenticator": (fold_cloned_authenticator, CloningState),
    "factor_reset_after_risk": (fold_factor_reset_after_risk, FactorResetState),
    "subject": (fold_detections, SubjectDetections),
}


def _names() -> list[str]:
    return sorted(path.name.removesuffix(".jsonl") for path in GOLDEN.glob("*.jsonl"))


def _load(name: str) -> tuple[list[Event], dict[str, Any]]:
    lines = (GOLDEN / f"{name}.jsonl").read_text().splitlines()
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    return [decode(line) for line in lines if line.strip()], expected


def _run(fold_name: str, overrides: dict[str, Any], events: list[Event]) -> tuple[Any, list[Event]]:
    fold, empty = FOLDS[fold_name]
    return replay(fold, empty(), events, thresholds_from(overrides))


@pytest.mark.parametrize("name", _names())
def test_golden_replay(name: str) -> None:
    events, expected = _load(name)
    state, derived = _run(expected["fold"], expected["thresholds"], events)
    assert detections(derived) == expected["expect"], expected["description"]
    assert [msgspec.json.decode(encode(e)) for e in derived] == expected["derived"]
    assert state.to_dict() == expected["final_state"]
    assert type(state).from_dict(expected["final_state"]) == state


def test_every_detection_has_golden_cases_that_fire_and_that_do_not() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for name in _names():
        _events, expected = _load(name)
        fired.update(expected["expect"])
        quiet.update(expected["near_miss_of"])
    every = {str(d) for d in Detection}
    assert fired == every, every - fired
    assert quiet == every, every - quiet


# -- the scenarios: ``python -m tests.unit.streams.test_detections_golden`` rewrites them --


class Scenario(NamedTuple):
    fold: str
    description: str
    events: list[Event]
    expect: list[str]
    """The detections that must come out, in order ([] for a near miss)."""
    near_miss_of: list[str] = []
    """The detections this scenario must *not* fire (shown quiet on purpose)."""
    thresholds: dict[str, Any] = {}


IP_LISTS = {
    "anonymous_networks": {"name": "tor_exits", "entries": ["185.220.100.0/22", "2a0b:f4c0::/32"]},
    "malicious_networks": {"name": "blocklist", "entries": ["198.51.100.66", "192.0.2.0/24"]},
}
SMS = {"sms_learning_sends": 5, "sms_premium_countries": ["GN"], "sms_burst_count": 20}
D = Detection


def _travel(speed_kmh: float, a: Any = BERLIN, b: Any = PARIS) -> list[Event]:
    log = Log()
    distance = haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)
    elapsed = round(distance / speed_kmh * 3600) * SECOND
    return [log.sign_in(T0, a), log.sign_in(T0 + elapsed, b)]


def _learnt(log: Log, count: int, *, every: Any = DAY, **kwargs: Any) -> list[Event]:
    return [log.sign_in(T0 + i * every, BERLIN, **kwargs) for i in range(count)]


def travel_scenarios() -> dict[str, Scenario]:
    log = Log()
    failed = [log.sign_in(T0, BERLIN), log.failed_login_from(T0 + 10 * MINUTE, SYDNEY)]
    log = Log()
    unlocated = [log.sign_in(T0, BERLIN), log.sign_in(T0 + 10 * MINUTE, SYDNEY, coordinates=False)]
    unlocated.append(log.sign_in(T0 + 20 * MINUTE, BERLIN))
    log = Log()
    centroid = [log.sign_in(T0, BERLIN), log.sign_in(T0 + 5 * MINUTE, GERMANY_CENTROID)]
    far = [log.sign_in(T0 + 10 * MINUTE, BERLIN)]
    far.append(log.sign_in(T0 + 50 * MINUTE, AUSTRALIA_CENTROID))
    it = "impossible_travel"
    return {
        "travel_berlin_paris_950kmh": Scenario(
            it, "Berlin to Paris at ~950 km/h: above 900, fires", _travel(950), [it]
        ),
        "travel_berlin_paris_850kmh": Scenario(
            it, "Berlin to Paris at ~850 km/h: a fast flight, quiet", _travel(850), [], [it]
        ),
        "travel_jitter_below_min_distance": Scenario(
            it,
            "Berlin to Potsdam (27 km) in 1 min, 1,600 km/h yet below 100 km: jitter, quiet",
            _travel(1600, BERLIN, POTSDAM),
            [],
            [it],
        ),
        "travel_failed_sign_in_ignored": Scenario(
            it, "a failed login from Sydney 10 min after Berlin: not a sign-in", failed, [], [it]
        ),
        "travel_missing_coordinates_ignored": Scenario(
            it, "Sydney without coordinates between two Berlin sign-ins: quiet", unlocated, [], [it]
        ),
        "travel_centroid": Scenario(
            it,
            "Berlin then the DE centroid (same country, imprecise): quiet; then the AU "
            "centroid 40 min later: fires on the distance less the 1000 km radius",
            centroid + far,
            [it],
        ),
    }


def familiarity_scenarios() -> dict[str, Scenario]:
    log = Log()
    after = _learnt(log, 10) + [
        log.sign_in(T0 + 10 * DAY, PARIS),
        log.sign_in(T0 + 11 * DAY, PARIS),
    ]
    log = Log()
    during = _learnt(log, 9) + [log.sign_in(T0 + 9 * DAY, PARIS)]
    log = Log()
    day14 = _learnt(log, 2, every=7 * DAY) + [log.sign_in(T0 + 14 * DAY, PARIS)]
    log = Log()
    day13 = _learnt(log, 2, every=6 * DAY) + [log.sign_in(T0 + 14 * DAY - SECOND, PARIS)]
    log = Log()
    device = _learnt(log, 10) + [log.sign_in(T0 + 10 * DAY, device="dev-2")]
    device += [log.sign_in(T0 + 10 * DAY + HOUR, device=None)]
    log = Log()
    device_learning = _learnt(log, 5) + [log.sign_in(T0 + 5 * DAY, device="dev-2")]
    nc, nd = "new_country", "new_device"
    return {
        "new_country_after_10_sign_ins": Scenario(
            nc, "10 sign-ins from DE, then FR twice: fires once", after, [nc]
        ),
        "new_country_while_learning": Scenario(
            nc, "9 sign-ins from DE, then FR: still learning, quiet", during, [], [nc]
        ),
        "new_country_14_days_after_the_first": Scenario(
            nc, "2 sign-ins, then FR 14 days after the first: learning over, fires", day14, [nc]
        ),
        "new_country_a_second_before_14_days": Scenario(
            nc, "FR one second before the 14 days are up: quiet", day13, [], [nc]
        ),
        "new_device_after_10_sign_ins": Scenario(
            nd, "10 sign-ins on dev-1, then dev-2 (fires), then no device id (quiet)", device, [nd]
        ),
        "new_device_while_learning": Scenario(
            nd, "5 sign-ins on dev-1, then dev-2: still learning, quiet", device_learning, [], [nd]
        ),
    }


def reputation_scenarios() -> dict[str, Scenario]:
    log = Log()
    listed = [log.login(T0, ip="185.220.101.5")]  # tor exit, failure
    listed.append(log.sign_in(T0 + MINUTE, ip="::ffff:198.51.100.66"))  # mapped v4, malicious
    listed.append(log.login(T0 + 2 * MINUTE, ip="2a0b:f4c0::1"))  # cool-down: quiet
    log = Log()
    clean = [log.login(T0, ip="185.220.104.1"), log.sign_in(T0 + MINUTE, ip="2a0b:f4c1::1")]
    clean.append(log.sign_in(T0 + 2 * MINUTE, ip="192.0.3.1"))
    anon, mal = "anonymous_ip", "malicious_ip"
    return {
        "ip_reputation_listed": Scenario(
            "ip_reputation",
            "a Tor exit login (anonymous), a sign-in from an IPv4-mapped blocklisted IP "
            "(malicious), a second Tor exit within the cool-down (quiet)",
            listed,
            [anon, mal],
            thresholds=IP_LISTS,
        ),
        "ip_reputation_neighbours": Scenario(
            "ip_reputation",
            "addresses just outside each listed network: quiet",
            clean,
            [],
            [anon, mal],
            thresholds=IP_LISTS,
        ),
    }


def push_scenarios() -> dict[str, Scenario]:
    log = Log()
    answers = ["rejected", "expired", "rejected", "rejected", "expired"]
    fatigue = [log.push(T0 + i * 2 * MINUTE, a) for i, a in enumerate(answers)]
    fatigue.append(log.push(T0 + 9 * MINUTE, "approved"))
    log = Log()
    four = [log.push(T0 + i * 2 * MINUTE, a) for i, a in enumerate(answers[:4])]
    four.append(log.push(T0 + 9 * MINUTE, "approved"))
    log = Log()
    seconds = [0, 150, 300, 450, 601]
    spread = [log.push(T0 + s * SECOND, a) for s, a in zip(seconds, answers, strict=True)]
    pf = "push_fatigue"
    return {
        "push_fatigue_then_approved": Scenario(
            pf,
            "5 refused pushes in 8 min (fires), then an approval (fires, critical)",
            fatigue,
            [pf, pf],
        ),
        "push_fatigue_four_refused": Scenario(
            pf, "4 refused pushes then an approval: quiet", four, [], [pf]
        ),
        "push_fatigue_outside_window": Scenario(
            pf, "5 refused pushes over 10 min 1 s: the first is out of the window", spread, [], [pf]
        ),
    }


def spray_scenarios() -> dict[str, Scenario]:
    def failures(count: int, gap: Any, repeat: int = 1) -> list[Event]:
        log = Log()
        return [
            log.login(T0 + (i * repeat + r) * gap, ip="192.0.2.99", subject=f"u-{i:04d}")
            for i in range(count)
            for r in range(repeat)
        ]

    ps = "password_spray"
    return {
        "password_spray_ten_subjects": Scenario(
            ps,
            "one IP fails against 10 subjects within 45 min: fires",
            failures(10, 5 * MINUTE),
            [ps],
        ),
        "password_spray_nine_subjects": Scenario(
            ps,
            "one IP fails 3 times each against 9 subjects: quiet",
            failures(9, MINUTE, repeat=3),
            [],
            [ps],
        ),
        "password_spray_outside_window": Scenario(
            ps,
            "10 subjects over 63 min: never 10 within the hour, quiet",
            failures(10, 7 * MINUTE),
            [],
            [ps],
        ),
    }


def guessing_scenarios() -> dict[str, Scenario]:
    log = Log()
    factors = [Factor.SMS, Factor.TOTP] * 5
    guesses = [log.code(T0 + i * 6 * MINUTE, f) for i, f in enumerate(factors)]
    guesses.insert(5, log.sign_in(T0 + 27 * MINUTE))  # a success does not reset it
    log = Log()
    nine = [log.code(T0 + i * 6 * MINUTE) for i in range(9)]
    nine += [log.code(T0 + 55 * MINUTE, reason="locked_out") for _ in range(3)]
    nine += [log.code(T0 + 56 * MINUTE, Factor.WEBAUTHN, "invalid_response")]
    nine += [log.code(T0 + 57 * MINUTE, reason="malformed_code")]
    log = Log()
    recovery = [
        log.recovery(T0 + i * 10 * MINUTE, r)
        for i, r in enumerate(["unknown_code", "used_code", "revoked_code"])
    ]
    log = Log()
    recovery_quiet = [log.recovery(T0), log.recovery(T0 + 30 * MINUTE)]
    recovery_quiet += [log.recovery(T0 + 40 * MINUTE, "locked_out") for _ in range(3)]
    recovery_quiet.append(log.recovery(T0 + 61 * MINUTE))
    log = Log()
    used = [log.recovery(T0 + i * 10 * HOUR, None) for i in range(3)]
    og, rc = "otp_guessing", "recovery_code_abuse"
    return {
        "otp_guessing_ten_wrong_codes": Scenario(
            og, "10 wrong SMS and TOTP codes in 54 min, a success among them: fires", guesses, [og]
        ),
        "otp_guessing_nine_wrong_codes": Scenario(
            og,
            "9 wrong codes, plus locked_out refusals, a WebAuthn failure, a malformed code: quiet",
            nine,
            [],
            [og],
        ),
        "recovery_code_failures": Scenario(
            rc, "3 failed recovery codes (unknown, used, revoked) in 20 min: fires", recovery, [rc]
        ),
        "recovery_code_failures_spread": Scenario(
            rc,
            "2 failures, 3 locked_out refusals, a third failure 61 min after the first: quiet",
            recovery_quiet,
            [],
            [rc],
        ),
        "recovery_codes_used_up": Scenario(
            rc, "3 recovery codes used within 20 h: fires", used, [rc]
        ),
    }


def sms_scenarios() -> dict[str, Scenario]:
    def learnt(log: Log) -> list[Event]:
        return [log.sms(T0 + i * HOUR, "DE", subject=f"u-{i}") for i in range(5)]

    start = T0 + DAY
    log = Log()
    burst = learnt(log) + [
        log.sms(start + i * 2 * MINUTE, "NG", subject=f"v-{i}") for i in range(5)
    ]
    log = Log()
    four = learnt(log) + [log.sms(start + i * 2 * MINUTE, "NG") for i in range(4)]
    four.append(log.sms(start + 9 * MINUTE, "DE"))
    log = Log()
    learning = [log.sms(T0 + i * HOUR, c) for i, c in enumerate(["DE", "NG", "DE", "DE", "DE"])]
    learning += [log.sms(start + i * MINUTE, "NG") for i in range(5)]
    log = Log()
    premium = [log.sms(T0 + i * MINUTE, "GN") for i in range(5)]
    log = Log()
    adopted = learnt(log) + [log.sms(start, "NG")]
    adopted += [log.sms(start + 7 * DAY + i * MINUTE, "NG") for i in range(5)]
    log = Log()
    rate = learnt(log) + [log.sms(start + i * 30 * SECOND, "DE") for i in range(20)]
    log = Log()
    rate_quiet = learnt(log) + [log.sms(start + i * 30 * SECOND, "DE") for i in range(19)]
    rate_quiet += [log.sms(start + 10 * MINUTE + i * MINUTE, "DE") for i in range(10)]
    sp = "sms_pumping"
    return {
        "sms_pumping_unusual_destination": Scenario(
            sp, "after learning DE, 5 codes to NG in 8 min: fires", burst, [sp], thresholds=SMS
        ),
        "sms_pumping_four_unusual": Scenario(
            sp, "4 codes to NG and one to DE in 9 min: quiet", four, [], [sp], thresholds=SMS
        ),
        "sms_pumping_learnt_country": Scenario(
            sp,
            "NG seen while learning is usual: 5 codes to NG, quiet",
            learning,
            [],
            [sp],
            thresholds=SMS,
        ),
        "sms_pumping_premium_destination": Scenario(
            sp, "5 codes to premium GN while learning: fires", premium, [sp], thresholds=SMS
        ),
        "sms_pumping_adopted_country": Scenario(
            sp,
            "NG first seen 7 days earlier is adopted: 5 codes to NG, quiet",
            adopted,
            [],
            [sp],
            thresholds=SMS,
        ),
        "sms_pumping_burst_rate": Scenario(
            sp, "20 codes to DE in 10 min: burst rate fires", rate, [sp], thresholds=SMS
        ),
        "sms_pumping_burst_rate_near_miss": Scenario(
            sp, "19 codes in 10 min, then one a minute: quiet", rate_quiet, [], [sp], thresholds=SMS
        ),
    }


def cloning_scenarios() -> dict[str, Scenario]:
    log = Log()
    refused = [log.webauthn(T0, ok=False, count=5, previous=9)]
    refused.append(
        log.webauthn(
            T0 + HOUR + MINUTE, ok=True, count=3, previous=None, flags=["sign_count_regression"]
        )
    )
    log = Log()
    fine = [log.webauthn(T0, ok=True, count=10, previous=9)]
    fine.append(log.webauthn(T0 + MINUTE, ok=True, count=0, previous=0))  # no counter
    fine.append(log.webauthn(T0 + 2 * MINUTE, ok=True, count=None, previous=None))
    ca = "cloned_authenticator"
    return {
        "cloned_authenticator_refused_then_accepted": Scenario(
            ca,
            "a refused regression (high), an accepted flagged one after the cool-down (critical)",
            refused,
            [ca, ca],
        ),
        "cloned_authenticator_counter_fine": Scenario(
            ca, "a rising counter, a zero counter, no counter: quiet", fine, [], [ca]
        ),
    }


def reset_scenarios() -> dict[str, Scenario]:
    log = Log()
    soon = [log.risk(T0, D.NEW_COUNTRY, RiskLevel.MEDIUM), log.removed(T0 + 2 * HOUR)]
    soon.append(log.regenerated(T0 + 2 * HOUR + MINUTE))  # within the cool-down
    log = Log()
    late = [log.risk(T0, D.NEW_COUNTRY, RiskLevel.MEDIUM), log.removed(T0 + 24 * HOUR + SECOND)]
    log = Log()
    mild = [
        log.risk(T0, D.NEW_DEVICE, RiskLevel.LOW, 30),
        log.risk(T0, D.PASSWORD_SPRAY, RiskLevel.HIGH, 75),
    ]
    mild += [log.removed(T0 + HOUR), log.regenerated(T0 + 2 * HOUR)]
    log = Log()
    takeover = _learnt(log, 10)
    takeover.append(log.sign_in(T0 + 9 * DAY + 30 * MINUTE, SYDNEY, device="dev-9"))
    takeover.append(log.removed(T0 + 9 * DAY + 50 * MINUTE))
    fr = "factor_reset_after_risk"
    return {
        "factor_reset_after_risk": Scenario(
            fr, "a medium risk, a removal 2 h later (fires), a regeneration (cool-down)", soon, [fr]
        ),
        "factor_reset_after_risk_too_late": Scenario(
            fr, "a removal 24 h 1 s after the risk: quiet", late, [], [fr]
        ),
        "factor_reset_after_mild_risk": Scenario(
            fr,
            "after a low risk and a spray (excluded): removal and regeneration quiet",
            mild,
            [],
            [fr],
        ),
        "subject_account_takeover": Scenario(
            "subject",
            "all per-subject folds: 10 sign-ins in Berlin, one from Sydney on a new device 30 min "
            "after the last (travel, country, device), a TOTP removed 20 min later (reset)",
            takeover,
            ["impossible_travel", "new_country", "new_device", fr],
        ),
    }


def reported_scenarios() -> dict[str, Scenario]:
    def verdict(log: Log, level: RiskLevel, at: datetime) -> Event:
        report = p.IdpRiskReported(
            provider="entra", level=level, risk_types=["unlikely_travel", "anonymized_ip_address"]
        )
        return log.event(report, at)

    log = Log()
    risky = [verdict(log, RiskLevel.HIGH, T0), log.removed(T0 + HOUR)]
    log = Log()
    calm = [verdict(log, RiskLevel.NONE, T0), log.removed(T0 + HOUR)]
    idp, fr = "idp_reported", "factor_reset_after_risk"
    return {
        "idp_reported": Scenario(
            "subject",
            "Entra ID reports a high-risk sign-in (filed as ours), a TOTP removed an hour later "
            "(the reset detection reads the provider's verdict like one of ours)",
            risky,
            [idp, fr],
        ),
        "idp_reported_none": Scenario(
            "subject",
            "Entra ID reports risk level none, then a removal: quiet",
            calm,
            [],
            [idp, fr],
        ),
    }


def golden_scenarios() -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    for part in (
        travel_scenarios,
        familiarity_scenarios,
        reputation_scenarios,
        push_scenarios,
        spray_scenarios,
        guessing_scenarios,
        sms_scenarios,
        cloning_scenarios,
        reset_scenarios,
        reported_scenarios,
    ):
        scenarios |= part()
    return scenarios


def write_golden() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for old in GOLDEN.glob("*"):
        old.unlink()
    for name, scenario in golden_scenarios().items():
        state, derived = _run(scenario.fold, scenario.thresholds, scenario.events)
        found = detections(derived)
        if found != scenario.expect:
            raise SystemExit(f"{name}: expected {scenario.expect}, the fold gave {found}")
        lines = b"".join(encode(e) + b"\n" for e in scenario.events)
        (GOLDEN / f"{name}.jsonl").write_bytes(lines)
        expected = {
            "description": scenario.description,
            "fold": scenario.fold,
            "thresholds": scenario.thresholds,
            "expect": scenario.expect,
            "near_miss_of": scenario.near_miss_of,
            "final_state": state.to_dict(),
            "derived": [msgspec.json.decode(encode(e)) for e in derived],
        }
        text = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
        (GOLDEN / f"{name}.expected.json").write_text(text)


if __name__ == "__main__":
    write_golden()

"""The per-event shortcuts of the pure folds (issue 16) change no result.

``fold_detections`` sends an event only to the detections that read its payload class
(each fold's ``READS``), windows add their newest mark without sorting, new country and
device learn by bisection, IPv4 text is read without ``ipaddress``, a state is dumped
reusing the parts it shares with the one dumped before and times are written by msgspec:
each is checked here against the plain way, and untouched states come back as the very
same object.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event
from schemas import payloads as p
from schemas.fields import Factor, Outcome, RiskLevel
from schemas.payloads import Detection
from streams.folds import (
    DetectionThresholds,
    NetworkList,
    SubjectDetections,
    cloning,
    familiarity,
    fatigue,
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
    guessing,
    reputation,
    reset,
    travel,
)
from streams.folds import window as w
from streams.folds.familiarity import _seen
from streams.folds.signals import completed_sign_in
from streams.folds.thresholds import parse_ip
from tests.factories import PAYLOADS, T0, sample_event
from tests.unit.streams import BERLIN, PARIS, SYDNEY, Log, Place, client
from verifiers.lockout import READS as LOCKOUT_READS
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = DetectionThresholds(
    cooldown=timedelta(minutes=30),
    learning_sign_ins=2,
    max_known_countries=3,  # fewer than the places: countries are forgotten and fire again
    max_known_devices=2,
    anonymous_networks=NetworkList.parse(["192.0.2.0/25"], name="tor"),
    malicious_networks=NetworkList.parse(["192.0.2.128/25"], name="intel"),
    push_fatigue_count=2,
    otp_guess_count=2,
    recovery_failure_count=2,
    recovery_success_count=2,
    reset_window=timedelta(hours=2),
)
PLACES = [BERLIN, PARIS, SYDNEY, Place("NG", 6.5244, 3.3792, "centroid")]
IPS = ["192.0.2.5", "192.0.2.200", "198.51.100.1"]
Fold = Callable[[Any, Event, DetectionThresholds], tuple[Any, list[Event]]]
PARTS: list[tuple[str, Fold, tuple[type[p.Payload], ...]]] = [
    ("travel", fold_impossible_travel, travel.READS),
    ("countries", fold_new_country, familiarity.READS),
    ("devices", fold_new_device, familiarity.READS),
    ("reputation", fold_ip_reputation, reputation.READS),
    ("push", fold_push_fatigue, fatigue.READS),
    ("otp", fold_otp_guessing, guessing.OTP_READS),
    ("recovery", fold_recovery_code_abuse, guessing.RECOVERY_READS),
    ("cloning", fold_cloned_authenticator, cloning.READS),
    ("reset", fold_factor_reset_after_risk, reset.READS),
]


def every_fold(
    state: SubjectDetections, event: Event, rules: DetectionThresholds
) -> tuple[SubjectDetections, list[Event]]:
    """``fold_detections`` the plain way: every event through every detection."""
    if isinstance(event.data, p.SubjectErased):
        return SubjectDetections(), []
    parts: dict[str, Any] = {}
    derived: list[Event] = []
    for name, fold, _ in PARTS[:-1]:
        parts[name], found = fold(getattr(state, name), event, rules)
        derived += found
    fresh, found = fold_factor_reset_after_risk(state.reset, event, rules)
    for risk in derived:
        fresh, _ = fold_factor_reset_after_risk(fresh, risk, rules)
    return SubjectDetections(**parts, reset=fresh), derived + found


KINDS = [
    "sign_in",
    "login",
    "login_mfa",
    "login_failed",
    "challenge",
    "rejected",
    "expired",
    "approved",
    "wrong_code",
    "recovery_failed",
    "recovery_used",
    "clone",
    "removed",
    "regenerated",
    "risk",
    "erased",
]
steps = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, len(PLACES) - 1),
        st.integers(0, len(IPS) - 1),
        st.sampled_from([0, 1, 30, 600, 1800, 7200]),  # seconds since the previous event
        st.booleans(),  # the same login transaction as the previous event
    ),
    max_size=40,
)


def build(actions: list[tuple[str, int, int, int, bool]]) -> list[Event]:
    log, at, events = Log(), T0, []
    correlation = "login-0"
    for n, (kind, where, ip, gap, same_login) in enumerate(actions):
        at += timedelta(seconds=gap)
        correlation = correlation if same_login else f"login-{n}"
        if kind == "sign_in":
            event = log.sign_in(
                at, PLACES[where], device=f"dev-{where}", ip=IPS[ip], correlationid=correlation
            )
        elif kind in ("login", "login_failed"):
            event = log.login(at, ok=kind == "login", ip=IPS[ip], correlationid=correlation)
        elif kind == "login_mfa":  # a password accepted, a second factor still to come
            data = p.LoginAttempted(
                outcome=Outcome.SUCCESS,
                method="password",
                mfa_required=True,
                client=client(PLACES[where], ip=IPS[ip]),
            )
            event = log.event(data, at, correlationid=correlation)
        elif kind == "challenge":
            event = sample_event("mfa.challenge.issued", subject=log.subject, now=at)
        elif kind in ("rejected", "expired", "approved"):
            event = log.push(at, kind)
        elif kind == "wrong_code":
            event = log.code(at, [Factor.SMS, Factor.TOTP][ip % 2])
        elif kind == "recovery_failed":
            event = log.recovery(at)
        elif kind == "recovery_used":
            event = log.recovery(at, None)
        elif kind == "clone":
            event = log.webauthn(at, ok=ip % 2 == 0, count=1, previous=3, enrollment=f"k-{ip}")
        elif kind == "removed":
            event = log.removed(at)
        elif kind == "regenerated":
            event = log.regenerated(at)
        elif kind == "risk":
            event = log.risk(at, list(Detection)[where], RiskLevel.HIGH, 70)
        else:
            event = sample_event("privacy.subject.erased", subject=log.subject, now=at)
        events.append(event)
    return events


@PROPERTY
@given(steps)
def test_fold_detections_is_every_detection_on_every_event(
    actions: list[tuple[str, int, int, int, bool]],
) -> None:
    events = build(actions)
    events += events[-3:]  # a redelivery: the risks derived again are ignored by the reset
    quick = plain = SubjectDetections()
    for event in events:
        before = quick
        quick, quick_found = fold_detections(quick, event, RULES)
        plain, plain_found = every_fold(plain, event, RULES)
        assert quick == plain
        assert quick.to_dict() == plain.to_dict()
        assert quick_found == plain_found
        assert quick.to_dict_after(before, before.to_dict()) == quick.to_dict()
        read = any(isinstance(event.data, reads) for _, _, reads in PARTS)
        if not (read or isinstance(event.data, p.SubjectErased)):
            assert quick is before  # read by no detection: the very same object


def test_a_fold_leaves_a_state_untouched_by_payloads_it_does_not_read() -> None:
    log, at = Log(), T0
    history = [log.sign_in(at + timedelta(minutes=i), PLACES[i % 4]) for i in range(6)]
    history += [log.code(at + timedelta(hours=1)), log.push(at + timedelta(hours=1), "expired")]
    history += [log.recovery(at + timedelta(hours=1))]
    history += [log.risk(at + timedelta(hours=1), Detection.OTP_GUESSING, RiskLevel.HIGH)]
    busy = SubjectDetections()
    for event in history:
        busy, _ = fold_detections(busy, event, RULES)
    assert busy.travel.last and busy.devices.known and busy.reset.risks
    for type_name, payload in PAYLOADS.items():
        event = sample_event(type_name, subject=log.subject, now=at + timedelta(hours=2))
        for name, fold, reads in PARTS:
            if isinstance(payload, reads):
                continue
            state = getattr(busy, name)
            assert fold(state, event, RULES) == (state, []), (name, type_name)
            assert fold(state, event, RULES)[0] is state, (name, type_name)
        if not completed_sign_in(event):
            for name, fold, _ in PARTS[:3]:
                assert fold(getattr(busy, name), event, RULES)[0] is getattr(busy, name)


def test_lockout_leaves_a_state_untouched_by_payloads_it_does_not_read() -> None:
    policy = lockout_policy(TIERS[next(iter(TIERS))])
    state, _ = fold_lockout(LockoutState(), sample_event("mfa.verification.failed"), policy)
    assert state != LockoutState()
    for type_name, payload in PAYLOADS.items():
        if not isinstance(payload, LOCKOUT_READS):
            event = sample_event(type_name, now=T0 + timedelta(seconds=5))
            assert fold_lockout(state, event, policy) == (state, [])
            assert fold_lockout(state, event, policy)[0] is state
    completed = sample_event("mfa.verification.succeeded", now=T0 + timedelta(seconds=5))
    fresh = LockoutState()
    assert fold_lockout(fresh, completed, policy)[0] is fresh  # nothing to reset


T = datetime(2026, 1, 1, tzinfo=UTC)
marks = st.lists(
    st.builds(
        w.Mark,
        st.integers(0, 100).map(lambda s: T + timedelta(seconds=s)),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["x", "y"]),
    ),
    max_size=12,
).map(lambda found: tuple(sorted(found)))


@PROPERTY
@given(
    marks,
    st.integers(0, 110),
    st.sampled_from(["a", "b", "d"]),
    st.integers(-5, 200),
    st.integers(-1, 8),
    st.booleans(),
)
def test_adding_to_a_window_is_sliding_it_with_the_mark(
    window: w.Marks, second: int, event_id: str, seconds: int, keep: int, at_mark: bool
) -> None:
    mark = w.Mark(T + timedelta(seconds=second), event_id, "x")
    now = mark.at if at_mark else T + timedelta(seconds=60)
    span = timedelta(seconds=seconds)
    expected = w.slide((*window, mark), now=now, window=span, keep=keep)
    assert w.add(window, mark, now=now, window=span, keep=keep) == expected


def seen_plainly(
    known: tuple[tuple[str, datetime], ...], value: str, now: datetime, limit: int
) -> tuple[tuple[tuple[str, datetime], ...], bool]:
    """What new country and device did before bisection: a dict, re-sorted."""
    values = dict(known)
    new = value not in values
    values[value] = max(now, values.get(value, now))
    if len(values) > limit:
        del values[min(values, key=lambda k: (values[k], k))]
    return tuple(sorted(values.items())), new


@PROPERTY
@given(
    st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 50), max_size=7),
    st.sampled_from("abcdefgh"),
    st.integers(0, 60),
    st.integers(1, 8),
)
def test_learning_a_value_by_bisection_is_learning_it_plainly(
    known: dict[str, int], value: str, second: int, limit: int
) -> None:
    seen = tuple(sorted((k, T + timedelta(seconds=s)) for k, s in known.items()))
    now = T + timedelta(seconds=second)
    assert _seen(seen, value, now, limit) == seen_plainly(seen, value, now, limit)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-1, 300).map(str),
            st.sampled_from(["00", "01", "010", "0x1", " 1", "1 ", "١", "+1", "", "255", "256"]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["", " ", "\n"]),
)
def test_ip_text_is_read_as_ipaddress_reads_it(octets: list[str], padding: str) -> None:
    text = padding + ".".join(octets) + padding
    try:
        expected: Any = ipaddress.ip_address(text.strip())
    except ValueError:
        expected = ValueError
    try:
        found: Any = parse_ip(text)
    except ValueError:
        found = ValueError
    assert found == expected and type(found) is type(expected)


ZONES = [
    UTC,
    timezone(timedelta(0), "UTC+0"),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(seconds=3661)),  # an offset with seconds: msgspec would drop them
    timezone(timedelta(microseconds=-1)),
    None,
]


@settings(max_examples=2000, deadline=None)
@given(st.datetimes(), st.sampled_from(ZONES), st.sampled_from([None, 0, 123_000]))
def test_times_are_written_as_isoformat_writes_them(
    moment: datetime, zone: timezone | None, micros: int | None
) -> None:
    if micros is not None:
        moment = moment.replace(microsecond=micros)
    moment = moment.replace(tzinfo=zone)
    assert w.isoformat(moment) == moment.isoformat()
    assert w.iso(moment) == moment.isoformat() and w.iso(None) is None


def test_a_state_loaded_without_a_part_dumps_the_part_afresh() -> None:
    """A stored form from before a detection was added lacks its part: the loaded state
    has a fresh one, which ``to_dict_after`` must dump instead of looking it up."""
    log = Log()
    state = SubjectDetections()
    for i in range(4):
        state, _ = fold_detections(state, log.sign_in(T0 + timedelta(minutes=i), BERLIN), RULES)
    stored = state.to_dict()
    del stored["cloning"]
    loaded = SubjectDetections.from_dict(stored)
    after, _ = fold_detections(loaded, log.sign_in(T0 + timedelta(hours=1), PARIS), RULES)
    assert after.to_dict_after(loaded, stored) == after.to_dict()

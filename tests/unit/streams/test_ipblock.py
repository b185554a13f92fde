"""Per-IP throttling (``streams.folds.ipblock``): the rule at its boundaries, lazy release,
the state's JSON form and bounds, and golden replays (``golden_ipblock/``).

``python -m tests.unit.streams.test_ipblock`` rewrites the golden files from
:func:`golden_scenarios`, refusing any whose derived event types differ from its intent.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from schemas import Event, decode, encode
from schemas import payloads as p
from schemas.fields import Factor, Outcome
from streams.folds.ipblock import (
    REASON,
    SOURCE,
    IpBlockPolicy,
    IpBlockState,
    fold_ip_block,
    ip_block_key,
    ip_block_status,
    ip_block_step,
)
from streams.folds.thresholds import NetworkList
from tests.factories import T0
from tests.unit.streams import MINUTE, SECOND, Log, client, replay

IP = "198.51.100.23"
POLICY = IpBlockPolicy()
GOLDEN = Path(__file__).parent / "golden_ipblock"


def failure(
    log: Log,
    at: datetime,
    subject: str,
    *,
    ip: str | None = IP,
    tenant: str = "acme",
    reason: str = "invalid_password",
) -> Event:
    where = None if ip is None else client(ip=ip)
    data = p.LoginAttempted(outcome=Outcome.FAILURE, method="password", reason=reason, client=where)
    return log.event(data, at, subject=subject, tenant=tenant)


def spray(log: Log, count: int, *, start: datetime = T0, gap: timedelta = SECOND) -> list[Event]:
    """One failure each against ``count`` subjects, ``gap`` apart."""
    return [failure(log, start + i * gap, f"u-{i:04d}") for i in range(count)]


def run(events: list[Event], policy: IpBlockPolicy = POLICY) -> tuple[IpBlockState, list[Event]]:
    return replay(fold_ip_block, IpBlockState(), events, policy)


def types(derived: list[Event]) -> list[str]:
    return [e.type for e in derived]


# -- the rule ------------------------------------------------------------------------------


def test_min_subjects_distinct_subjects_within_the_window_block_the_ip() -> None:
    log = Log()
    events = spray(log, POLICY.min_subjects - 1, gap=10 * SECOND)
    events.insert(3, failure(log, T0 + 25 * SECOND, "u-0001"))  # a repeat: counts as a failure
    last = failure(log, T0 + 5 * MINUTE, "u-last")
    state, derived = run([*events, last])

    (applied,) = derived
    assert applied.type == "ip.block.applied"
    data = applied.data
    assert isinstance(data, p.IpBlockApplied)
    assert data == p.IpBlockApplied(
        ip=IP,
        reason=REASON,
        blocked_until=last.time + POLICY.duration,
        failures=POLICY.min_subjects + 1,
        distinct_subjects=POLICY.min_subjects,
        trigger_event_id=last.id,
    )
    # the envelope is the trigger's: its tenant, subject, time and correlation
    assert (applied.tenant, applied.subject, applied.partitionkey) == (
        "acme",
        "u-last",
        "acme/u-last",
    )
    assert (applied.time, applied.correlationid, applied.source) == (
        last.time,
        last.correlationid,
        SOURCE,
    )
    assert run([*events, last])[1] == derived  # deterministic: a replay derives the same ids
    assert state == IpBlockState(block=state.block)  # a block starts the count afresh
    status = ip_block_status(state, now=last.time)
    assert (status.blocked, status.until, status.reason) == (True, data.blocked_until, REASON)


def test_one_subject_short_of_the_threshold_is_quiet_however_many_failures() -> None:
    log = Log()
    events = [
        failure(log, T0 + i * SECOND, f"u-{i % (POLICY.min_subjects - 1)}") for i in range(300)
    ]
    state, derived = run(events)

    assert derived == []
    assert len(state.marks) == POLICY.min_subjects - 1
    assert not ip_block_status(state, now=events[-1].time).blocked


@pytest.mark.parametrize(
    ("span", "blocked"),
    [(POLICY.window, True), (POLICY.window + SECOND, False)],
    ids=["window-inclusive", "one-second-beyond"],
)
def test_the_window_is_inclusive(span: timedelta, blocked: bool) -> None:
    log = Log()
    events = spray(log, POLICY.min_subjects - 1)
    events.append(failure(log, T0 + span, "u-last"))
    _, derived = run(events)

    assert types(derived) == (["ip.block.applied"] if blocked else [])


def test_subjects_of_other_tenants_are_other_people() -> None:
    log = Log()
    half = POLICY.min_subjects // 2
    events = [failure(log, T0 + i * SECOND, f"u-{i}") for i in range(half)]
    events += [
        failure(log, T0 + MINUTE + i * SECOND, f"u-{i}", tenant="globex") for i in range(half)
    ]
    state, derived = run(events)

    (applied,) = derived
    assert isinstance(applied.data, p.IpBlockApplied)
    assert applied.data.distinct_subjects == POLICY.min_subjects
    assert applied.tenant == "globex"


def test_what_is_not_counted() -> None:
    log = Log()
    background = spray(log, POLICY.min_subjects - 1)
    at = T0 + MINUTE
    where = client(ip=IP)
    not_counted = [
        failure(log, at, "u-refused", reason="locked_out"),  # refused unseen by the gate
        failure(log, at, "u-no-ip", ip=None),  # no client IP: not this fold's
        failure(log, at, "u-other-ip", ip="192.0.2.1"),  # another IP (the stream keys by IP)
        log.event(
            p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=where),
            at,
            subject="u-success",
        ),
        log.event(p.PushRejected(challenge_id="c", client=where), at, subject="u-push"),
        log.event(
            p.VerificationFailed(factor=Factor.TOTP, reason="locked_out", client=where),
            at,
            subject="u-locked-code",
        ),
    ]
    same_ip = [e for e in not_counted if ip_block_key(e) == IP]
    state, derived = run(background + same_ip)
    assert derived == []
    assert len(state.marks) == POLICY.min_subjects - 1

    # a wrong second factor and a wrong recovery code from the IP do count
    code = log.event(
        p.VerificationFailed(factor=Factor.TOTP, reason="invalid_code", client=where),
        at,
        subject="u-code",
    )
    _, derived = run([*background, code])
    assert types(derived) == ["ip.block.applied"]
    recovery = log.event(p.RecoveryFailed(reason="unknown_code", client=where), at, subject="u-r")
    _, derived = run([*background, recovery])
    assert types(derived) == ["ip.block.applied"]


def test_keys_are_canonical_and_only_attempts_are_keyed() -> None:
    log = Log()
    mapped = failure(log, T0, "u-1", ip=f"::ffff:{IP}")
    assert ip_block_key(mapped) == IP  # IPv4-mapped IPv6 is its IPv4 address
    assert ip_block_key(failure(log, T0, "u-1", ip="2001:DB8:0::1")) == "2001:db8::1"
    assert ip_block_key(failure(log, T0, "u-1", ip=None)) is None
    sent = p.ChallengeIssued(factor=Factor.SMS, challenge_id="c", client=client(ip=IP))
    assert ip_block_key(log.event(sent, T0)) is None  # not an attempt


def test_exempt_networks_are_never_blocked() -> None:
    exempt = NetworkList.parse(["198.51.100.0/24"], name="offices")
    policy = IpBlockPolicy(exempt_networks=exempt)
    state, derived = run(spray(Log(), 3 * POLICY.min_subjects), policy)

    assert derived == []
    assert state == IpBlockState()


# -- lazy release, failures during a block ---------------------------------------------------


def blocked(log: Log) -> tuple[list[Event], datetime]:
    events = spray(log, POLICY.min_subjects)
    return events, events[-1].time + POLICY.duration


def test_expiry_is_noticed_by_the_first_event_at_or_after_it() -> None:
    log = Log()
    events, until = blocked(log)
    success = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP))
    before = log.event(success, until - SECOND, subject="u-ok")
    at = log.event(success, until, subject="u-ok")
    state, derived = run([*events, before])
    assert types(derived) == ["ip.block.applied"]
    assert ip_block_status(state, now=until - SECOND).blocked
    assert not ip_block_status(state, now=until).blocked  # the status needs no event

    state, derived = run([*events, before, at])
    assert types(derived) == ["ip.block.applied", "ip.block.released"]
    released = derived[-1]
    assert released.data == p.IpBlockReleased(ip=IP, reason="expired")
    assert (released.subject, released.time, released.source) == ("u-ok", until, SOURCE)
    assert state == IpBlockState()


def test_failures_during_a_block_count_towards_the_next_one_after_release() -> None:
    log = Log()
    events, until = blocked(log)
    # the IP keeps failing against new subjects while blocked: counted, nothing applied
    during = [
        failure(log, until - MINUTE + i * SECOND, f"v-{i}") for i in range(POLICY.min_subjects)
    ]
    state, derived = run(events + during)
    assert types(derived) == ["ip.block.applied"]
    assert len(state.marks) == POLICY.min_subjects

    # the first failure at expiry releases, is counted, and blocks again at once
    again = failure(log, until, "w-1")
    state, derived = run([*events, *during, again])
    assert types(derived) == ["ip.block.applied", "ip.block.released", "ip.block.applied"]
    assert len({e.id for e in derived}) == 3
    second = derived[-1].data
    assert isinstance(second, p.IpBlockApplied)
    assert second.blocked_until == until + POLICY.duration
    assert second.trigger_event_id == again.id
    assert second.failures == POLICY.min_subjects + 1


def test_an_ip_quiet_since_its_release_needs_a_full_count_again() -> None:
    log = Log()
    events, until = blocked(log)
    later = spray(log, POLICY.min_subjects - 1, start=until + MINUTE)
    _, derived = run(events + later)

    assert types(derived) == ["ip.block.applied", "ip.block.released"]


# -- state: JSON form, bounds, the table step -----------------------------------------------


def test_state_round_trips_and_stays_bounded() -> None:
    log = Log()
    events = [failure(log, T0 + i * 7 * SECOND, f"u-{i % 7}") for i in range(2000)]
    state, derived = run(events)

    assert derived == []
    assert len(state.marks) == 7
    assert len(state.minutes) <= math.ceil(POLICY.window / MINUTE) + 1
    assert IpBlockState.from_dict(json.loads(json.dumps(state.to_dict()))) == state

    blocked_state, _ = run(spray(log, POLICY.min_subjects))
    assert blocked_state.block is not None
    assert IpBlockState.from_dict(blocked_state.to_dict()) == blocked_state


@pytest.mark.parametrize(
    "bad",
    [
        {"version": 2},
        {"version": 1, "minutes": [[1, "x"]]},
        {"version": 1, "marks": [["not a time", "id", "acme/u"]]},
        {"version": 1, "block": {"since": "2026-11-02T09:30:00+00:00"}},
        {
            "version": 1,
            "block": {
                "since": "2026-11-02T09:30:00",  # no offset
                "until": "2026-11-02T09:45:00+00:00",
                "failures": 1,
                "distinct_subjects": 1,
                "trigger_event_id": "e",
            },
        },
    ],
)
def test_malformed_states_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        IpBlockState.from_dict(bad)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("min_subjects", 1, "min_subjects: expected an integer in 2..10000"),
        ("min_subjects", True, "min_subjects"),
        ("window", timedelta(days=2), "window: expected a timedelta in (0, 1 day"),
        ("duration", timedelta(0), "duration"),
        ("exempt_networks", ["10.0.0.0/8"], "exempt_networks: expected a NetworkList"),
    ],
)
def test_policy_values_are_checked(field: str, value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=r"^" + says.replace("(", r"\(")):
        IpBlockPolicy(**{field: value})


def test_the_table_step_skips_writes_for_untouched_ips() -> None:
    step = ip_block_step(POLICY)
    log = Log()
    success = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP))
    assert step(None, log.event(success, T0)) == (None, [])

    stored, derived = step(None, failure(log, T0, "u-1"))
    assert stored is not None and derived == []
    assert IpBlockState.from_dict(stored).marks[0].label == "acme/u-1"
    same, _ = step(stored, log.event(success, T0 + SECOND))
    assert same is stored


def test_the_status_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ip_block_status(IpBlockState(), now=datetime(2026, 11, 2))


# -- golden replays ------------------------------------------------------------------------


class Scenario(NamedTuple):
    description: str
    events: list[Event]
    expect: list[str]
    """Types of the derived events, in order ([] for a near miss)."""
    policy: dict[str, int] = {}
    """Overrides: ``min_subjects``; ``window`` and ``duration`` in seconds."""


def _policy(overrides: dict[str, int]) -> IpBlockPolicy:
    values: dict[str, Any] = dict(overrides)
    for name in ("window", "duration"):
        if name in values:
            values[name] = timedelta(seconds=values[name])
    return IpBlockPolicy(**values)


def golden_scenarios() -> dict[str, Scenario]:
    applied, released = "ip.block.applied", "ip.block.released"
    log = Log()
    stuffing = spray(log, 20, gap=30 * SECOND)
    log = Log()
    near = [failure(log, T0 + i * 20 * SECOND, f"u-{i % 19:04d}") for i in range(40)]
    log = Log()
    cycle = spray(log, 10, gap=MINUTE)
    until = cycle[-1].time + 10 * MINUTE
    cycle += [failure(log, until - 5 * MINUTE + i * SECOND, f"v-{i}") for i in range(10)]
    cycle.append(failure(log, until, "w-1"))
    small = {"min_subjects": 10, "window": 900, "duration": 600}
    return {
        "ip_block_twenty_subjects": Scenario(
            "one IP fails against 20 subjects within 10 minutes: blocked", stuffing, [applied]
        ),
        "ip_block_nineteen_subjects": Scenario(
            "40 failures from one IP against 19 subjects: one short, quiet", near, []
        ),
        "ip_block_blocked_again_at_expiry": Scenario(
            "10 subjects (threshold 10): blocked for 10 min; 10 more fail during the block; "
            "the first failure at expiry releases and blocks again",
            cycle,
            [applied, released, applied],
            small,
        ),
    }


def _names() -> list[str]:
    return sorted(path.name.removesuffix(".jsonl") for path in GOLDEN.glob("*.jsonl"))


def test_every_golden_scenario_is_on_disk() -> None:
    assert _names() == sorted(golden_scenarios())


@pytest.mark.parametrize("name", _names())
def test_golden_replay(name: str) -> None:
    lines = (GOLDEN / f"{name}.jsonl").read_text().splitlines()
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    state, derived = run([decode(line) for line in lines], _policy(expected["policy"]))

    assert types(derived) == expected["expect"], expected["description"]
    assert [msgspec.json.decode(encode(e)) for e in derived] == expected["derived"]
    assert state.to_dict() == expected["final_state"]


def write_golden() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, scenario in golden_scenarios().items():
        state, derived = run(scenario.events, _policy(scenario.policy))
        if types(derived) != scenario.expect:
            raise SystemExit(f"{name}: derived {types(derived)}, intended {scenario.expect}")
        log = "".join(encode(e).decode() + "\n" for e in scenario.events)
        (GOLDEN / f"{name}.jsonl").write_text(log)
        expected = {
            "description": scenario.description,
            "policy": scenario.policy,
            "expect": scenario.expect,
            "derived": [msgspec.json.decode(encode(e)) for e in derived],
            "final_state": state.to_dict(),
        }
        (GOLDEN / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    write_golden()

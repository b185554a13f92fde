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
from schemas.fields import Factor, LockoutScope, Outcome
from streams.folds.ipblock import (
    MAX_REPORTING_TENANTS,
    REASON,
    REPORTED,
    SOURCE,
    SUBJECT,
    TENANT,
    IpBlockPolicy,
    IpBlockState,
    IpBlockStatus,
    fold_ip_block,
    ip_block_key,
    ip_block_status,
)
from streams.folds.thresholds import NetworkList
from tests.factories import T0
from tests.unit.streams import DAY, HOUR, MINUTE, SECOND, Log, client, replay

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
    events.insert(3, failure(log, T0 + 25 * SECOND, "u-0001"))  # a repeat: one subject
    last = failure(log, T0 + 5 * MINUTE, "u-last")
    state, derived = run([*events, last])

    (applied,) = derived
    assert applied.type == "ip.block.applied"
    data = applied.data
    assert isinstance(data, p.IpBlockApplied)
    bucket = T0  # 09:30: buckets are min(duration, window) = 15 min long, from 00:00 UTC
    assert data == p.IpBlockApplied(
        ip=IP,
        reason=REASON,
        blocked_until=bucket + 15 * MINUTE + POLICY.duration,  # the bucket's end + duration
        failures=POLICY.min_subjects,  # the rule met: at least that many
        distinct_subjects=POLICY.min_subjects,
    )
    # the platform's event at the bucket's start: nothing of the failure that met the rule
    assert (applied.tenant, applied.subject, applied.partitionkey) == (
        TENANT,
        SUBJECT,
        f"{TENANT}/{SUBJECT}",
    )
    assert (applied.time, applied.correlationid, applied.source) == (bucket, applied.id, SOURCE)
    assert run([*events, last])[1] == derived  # deterministic: a replay derives the same ids
    status = ip_block_status(state, now=last.time)
    assert (status.blocked, status.until, status.reason) == (True, data.blocked_until, REASON)
    assert status.since == T0 + 5 * MINUTE  # the minute whose window met the rule
    assert not ip_block_status(state, now=status.since - SECOND).blocked


def test_one_subject_short_of_the_threshold_is_quiet_however_many_failures() -> None:
    log = Log()
    events = [
        failure(log, T0 + i * SECOND, f"u-{i % (POLICY.min_subjects - 1)}") for i in range(300)
    ]
    state, derived = run(events)

    assert derived == [] and state.blocks == {} and state.block is None
    assert all(len(held) == POLICY.min_subjects - 1 for held in state.subjects.labels.values())
    assert not ip_block_status(state, now=events[-1].time).blocked


@pytest.mark.parametrize(
    ("last", "blocked"),
    [(POLICY.window + 59 * SECOND, True), (POLICY.window + MINUTE, False)],
    ids=["in-the-16th-minute", "in-the-17th-minute"],
)
def test_the_window_is_the_whole_minutes_it_overlaps(last: timedelta, blocked: bool) -> None:
    log = Log()
    events = spray(log, POLICY.min_subjects - 1)  # 09:30:00 .. 09:30:18
    events.append(failure(log, T0 + last, "u-last"))
    _, derived = run(events)

    assert types(derived) == (["ip.block.applied"] if blocked else [])


def test_subjects_of_other_tenants_are_other_people() -> None:
    log = Log()
    half = POLICY.min_subjects // 2
    events = [failure(log, T0 + i * SECOND, f"u-{i}") for i in range(half)]
    events += [
        failure(log, T0 + MINUTE + i * SECOND, f"u-{i}", tenant="globex") for i in range(half)
    ]
    _, derived = run(events)

    (applied,) = derived
    assert isinstance(applied.data, p.IpBlockApplied)
    assert applied.tenant == TENANT


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
        *(  # sends refused as too soon or too often: no code was checked
            log.event(
                p.VerificationFailed(factor=Factor.SMS, reason=reason, client=where),
                at,
                subject=f"u-{reason}",
            )
            for reason in ("resend_cooldown", "send_limit", "push_pending")
        ),
    ]
    same_ip = [e for e in not_counted if ip_block_key(e) == IP]
    state, derived = run(background)
    for event in same_ip:  # none of them even touches the state
        assert fold_ip_block(state, event, POLICY) == (state, [])
    assert derived == []

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


# -- promptness, extension, release ----------------------------------------------------------


def test_the_block_applies_on_the_failure_that_completes_the_count_whichever_it_is() -> None:
    log = Log()
    events = spray(log, POLICY.min_subjects, gap=10 * SECOND)
    for last in (events[-1], events[0], events[7]):
        rest = [e for e in events if e is not last]
        state, derived = run(rest)
        assert derived == []
        state, derived = fold_ip_block(state, last, POLICY)
        assert types(derived) == ["ip.block.applied"]
        assert ip_block_status(state, now=events[-1].time).blocked


def blocked(log: Log) -> tuple[list[Event], datetime]:
    events = spray(log, POLICY.min_subjects)  # 09:30: the 09:30 bucket
    return events, T0 + 15 * MINUTE + POLICY.duration  # 10:00


def test_failures_in_a_later_bucket_while_the_window_still_meets_the_rule_extend_it() -> None:
    log = Log()
    events, until = blocked(log)
    again = failure(log, T0 + 16 * MINUTE, "v-1")  # 09:46: the window (from 09:31) holds 1
    assert types(run([*events, again])[1]) == ["ip.block.applied"]
    more = [failure(log, T0 + 16 * MINUTE + i * SECOND, f"v-{i}") for i in range(2, 21)]
    state, derived = run([*events, again, *more])  # 20 new subjects in the 09:45 bucket

    assert types(derived) == ["ip.block.applied", "ip.block.applied"]
    second = derived[-1].data
    assert isinstance(second, p.IpBlockApplied)
    assert second.blocked_until == until + 15 * MINUTE
    assert derived[-1].time == T0 + 15 * MINUTE
    status = ip_block_status(state, now=until)  # one block from 09:30 to 10:15
    assert (status.blocked, status.since, status.until) == (True, T0, until + 15 * MINUTE)


def test_the_release_waits_until_no_failure_to_come_can_extend_the_block() -> None:
    log = Log()
    events, until = blocked(log)
    success = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP))
    quiet = log.event(success, until + 2 * POLICY.lateness, subject="u-ok")
    state, derived = run([*events, quiet])
    assert types(derived) == ["ip.block.applied"]  # a success changes nothing
    assert ip_block_status(state, now=until - SECOND).blocked
    assert not ip_block_status(state, now=until).blocked  # the status needs no event

    # the block ends at 10:00, a bucket boundary; the 10:00 bucket could still have extended
    # it (from 10:00 on) until a failure an hour after its end, 10:15, comes
    early = failure(log, until + 15 * MINUTE + POLICY.lateness - SECOND, "w-1")
    assert types(run([*events, early])[1]) == ["ip.block.applied"]
    on_time = failure(log, until + 15 * MINUTE + POLICY.lateness, "w-2")
    state, derived = run([*events, on_time])
    assert types(derived) == ["ip.block.applied", "ip.block.released"]
    released = derived[-1]
    assert released.data == p.IpBlockReleased(ip=IP, reason="expired")
    assert (released.tenant, released.subject, released.time, released.source) == (
        TENANT,
        SUBJECT,
        until,
        SOURCE,
    )
    assert state.block is None and state.blocks == {}


def test_an_ip_quiet_since_its_block_needs_a_full_count_again() -> None:
    log = Log()
    events, until = blocked(log)
    later = spray(log, POLICY.min_subjects - 1, start=until + MINUTE)
    _, derived = run(events + later)

    assert types(derived) == ["ip.block.applied"]


# -- blocks an identity provider reported ----------------------------------------------------


def reported(
    log: Log, at: datetime, *, ip: str = IP, until: datetime | None = None, tenant: str = "acme"
) -> Event:
    data = p.IdpLockReported(
        provider="auth0", scope=LockoutScope.IP, reason="limit_mu", ip=ip, locked_until=until
    )
    return log.event(data, at, tenant=tenant)


def status_for(state: IpBlockState, now: datetime, tenant: str = "acme") -> IpBlockStatus:
    return ip_block_status(state, now=now, tenant=tenant)


def test_a_reported_block_blocks_the_address_and_derives_one_event_per_report() -> None:
    log = Log()
    report = reported(log, T0)
    assert ip_block_key(report) == IP
    state, derived = run([report])
    (applied,) = derived
    data = applied.data
    assert isinstance(data, p.IpBlockApplied)
    assert (data.ip, data.reason, data.trigger_event_id) == (IP, REPORTED, report.id)
    assert (data.failures, data.distinct_subjects) == (0, 0)  # the provider gives no counts
    assert data.blocked_until == T0 + POLICY.duration
    assert data.only_tenant == "acme"  # the reporting tenant's block, not the platform's
    assert (applied.tenant, applied.subject, applied.source) == ("acme", SUBJECT, SOURCE)
    status = status_for(state, T0 + MINUTE)
    assert (status.blocked, status.reason, status.until) == (True, REPORTED, T0 + POLICY.duration)
    assert not status_for(state, T0 + POLICY.duration).blocked
    assert IpBlockState.from_dict(state.to_dict()) == state
    assert run([report, report])[1] == [applied]  # the same report again: a repeat


def test_the_providers_end_is_kept_and_overlapping_reports_merge_in_any_order() -> None:
    log = Log()
    first = reported(log, T0, until=T0 + 30 * MINUTE)
    second = reported(log, T0 + 20 * MINUTE, until=T0 + 2 * HOUR)
    forward, backward = run([first, second]), run([second, first])
    assert forward[0] == backward[0]
    assert sorted(e.id for e in forward[1]) == sorted(e.id for e in backward[1])
    status = status_for(forward[0], T0 + 90 * MINUTE)
    assert (status.blocked, status.since, status.until) == (True, T0, T0 + 2 * HOUR)


def test_a_repeated_report_without_an_end_blocks_once() -> None:
    log = Log()
    state, derived = run([reported(log, T0 + i * MINUTE) for i in range(5)])
    assert len(derived) == 1
    assert status_for(state, T0 + MINUTE).until == T0 + POLICY.duration


def test_an_ended_exempt_or_other_scope_report_blocks_nothing() -> None:
    log = Log()
    exempt = IpBlockPolicy(exempt_networks=NetworkList.parse(["198.51.100.0/24"], name="office"))
    assert run([reported(log, T0)], exempt) == (IpBlockState(), [])
    assert run([reported(log, T0, until=T0 - SECOND)]) == (IpBlockState(), [])
    subject = log.event(
        p.IdpLockReported(provider="okta", scope=LockoutScope.SUBJECT, reason="locked"), T0
    )
    assert ip_block_key(subject) is None
    assert run([subject]) == (IpBlockState(), [])


def test_a_reported_block_survives_the_rules_own_blocks_and_releases() -> None:
    log = Log()
    report = reported(log, T0, until=T0 + 3 * HOUR)
    events = [report, *spray(log, POLICY.min_subjects, start=T0 + MINUTE)]
    events.append(failure(log, T0 + 2 * HOUR, "u-late"))  # settles and releases the rule's
    state, derived = run(events)
    assert types(derived).count("ip.block.released") == 1
    status = status_for(state, T0 + 2 * HOUR + MINUTE)
    assert (status.blocked, status.reason) == (True, REPORTED)


def test_one_tenants_report_does_not_block_a_shared_address_for_anyone_else() -> None:
    """An attacker with one tenant's adapter (or ingest) credential reports a block of an
    address other tenants' people share (a NAT, a VPN): it holds for that tenant alone."""
    log = Log()
    report = reported(log, T0, until=T0 + 90 * DAY, tenant="mallory")
    state, _ = run([report])
    assert status_for(state, T0 + MINUTE, "mallory").blocked
    assert not status_for(state, T0 + MINUTE, "acme").blocked
    assert not ip_block_status(state, now=T0 + MINUTE).blocked  # not the platform's block
    # The rule's own block (many subjects failing) still holds for every tenant.
    state, _ = run([report, *spray(log, POLICY.min_subjects)])
    assert status_for(state, T0 + 5 * MINUTE, "acme").reason == REASON


def test_tenants_reports_are_kept_apart_and_bounded() -> None:
    log = Log()
    first = reported(log, T0, until=T0 + HOUR, tenant="acme")
    second = reported(log, T0 + MINUTE, until=T0 + 2 * HOUR, tenant="globex")
    state, derived = run([first, second])
    assert [e.tenant for e in derived] == ["acme", "globex"]
    assert status_for(state, T0 + 90 * MINUTE, "acme").blocked is False
    assert status_for(state, T0 + 90 * MINUTE, "globex").until == T0 + 2 * HOUR
    many = [
        reported(log, T0 + i * SECOND, until=T0 + DAY + i * SECOND, tenant=f"t{i}")
        for i in range(MAX_REPORTING_TENANTS + 10)
    ]
    state, _ = run(many)
    assert len(state.reported) == MAX_REPORTING_TENANTS
    assert "t0" not in state.reported and f"t{MAX_REPORTING_TENANTS + 9}" in state.reported
    assert IpBlockState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


# -- state: JSON form, bounds, unchanged states ----------------------------------------------


def test_state_round_trips_and_stays_bounded() -> None:
    log = Log()
    events = [failure(log, T0 + i * 7 * SECOND, f"u-{i % 7}") for i in range(2000)]
    state, derived = run(events)
    grid = POLICY.grid

    assert derived == []
    assert state.newest is not None
    assert len(state.subjects.labels) <= grid.late + grid.span + 1
    assert min(state.subjects.labels) >= state.newest - grid.late - grid.span
    assert IpBlockState.from_dict(json.loads(json.dumps(state.to_dict()))) == state

    stuffing = [failure(log, T0 + i * 3 * SECOND, f"x-{i}") for i in range(5000)]  # 4 h
    state, derived = run(stuffing)
    assert types(derived) == ["ip.block.applied"] * 17  # each bucket from 09:30 to 13:30
    assert len(state.subjects.full) <= grid.late + grid.span + 1 and not state.subjects.labels
    assert len(state.blocks) <= math.ceil(POLICY.lateness / POLICY.window) + 1
    assert state.block is not None and state.block.since == T0  # one block for four hours
    assert IpBlockState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    "bad",
    [
        {"version": 1},
        {"version": 2, "blocks": [[1, "x"]]},
        {"version": 2, "slots": [["not a slot", ["acme/u"]]]},
        {"version": 2, "block": {"since": "2026-11-02T09:30:00+00:00"}},
        {
            "version": 2,
            "block": {
                "since": "2026-11-02T09:30:00",  # no offset
                "until": "2026-11-02T09:45:00+00:00",
            },
        },
        {"version": 2, "grid": [60, 900, 900]},
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
        ("lateness", timedelta(days=2), "lateness: expected a timedelta in (0, 1 day"),
        ("exempt_networks", ["10.0.0.0/8"], "exempt_networks: expected a NetworkList"),
    ],
)
def test_policy_values_are_checked(field: str, value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=r"^" + says.replace("(", r"\(")):
        IpBlockPolicy(**{field: value})


def test_another_policy_starts_afresh() -> None:
    log = Log()
    state, _ = run(spray(log, POLICY.min_subjects - 1))
    stricter = IpBlockPolicy(min_subjects=POLICY.min_subjects + 1)
    after, derived = fold_ip_block(state, failure(log, T0, "u-last"), stricter)
    assert derived == [] and len(after.subjects.labels[after.newest or 0]) == 1


def test_an_event_that_changes_nothing_returns_the_very_state() -> None:
    """The engine skips the write of a key whose fold returned the state it was given."""
    log = Log()
    success = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP))
    fresh = IpBlockState()
    assert fold_ip_block(fresh, log.event(success, T0), POLICY) == (fresh, [])
    assert fold_ip_block(fresh, log.event(success, T0), POLICY)[0] is fresh

    state, derived = fold_ip_block(fresh, failure(log, T0, "u-1"), POLICY)
    assert state is not fresh and derived == []
    assert state.subjects.labels[state.newest or 0] == ("acme/u-1",)
    assert fold_ip_block(state, log.event(success, T0 + SECOND), POLICY)[0] is state
    same, _ = fold_ip_block(state, failure(log, T0 + SECOND, "u-1"), POLICY)  # same subject, minute
    assert same is state


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
    cycle = spray(log, 10, gap=MINUTE)  # 09:30 .. 09:39: the 09:30 bucket, until 09:50
    cycle += [failure(log, T0 + 15 * MINUTE + i * SECOND, f"v-{i}") for i in range(10)]
    cycle.append(failure(log, T0 + 105 * MINUTE, "w-1"))  # 11:15
    small = {"min_subjects": 10, "window": 900, "duration": 600}
    return {
        "ip_block_twenty_subjects": Scenario(
            "one IP fails against 20 subjects within 10 minutes: blocked", stuffing, [applied]
        ),
        "ip_block_nineteen_subjects": Scenario(
            "40 failures from one IP against 19 subjects: one short, quiet", near, []
        ),
        "ip_block_extended_then_released": Scenario(
            "10 subjects (threshold 10, window 15 min, buckets and duration 10 min) block the "
            "IP in the 09:30 bucket until 09:50; 10 more at 09:45 extend it to 10:00; a "
            "failure at 11:15, an hour after the end of the bucket the block ends in, "
            "releases it (at 10:00)",
            cycle,
            [applied, applied, released],
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

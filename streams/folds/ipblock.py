"""Per-IP throttling: an IP failing against many subjects is blocked for a while.

The lockout fold (``verifiers.lockout``) protects one subject from guesses; credential
stuffing and password spraying try one or two passwords against each of many subjects and
never trip it. :func:`fold_ip_block` runs per client IP (:func:`ip_block_key`; the stream
re-keys by IP through an internal topic) and is part of lockout: its events go to the
lockouts topic. :func:`ip_block_status` answers at any time from the state.

The rule is stated on event time alone (the model: :mod:`streams.folds.slots`): what it
derives and the state it leaves do not depend on which failure arrived last, as long as
none arrives more than ``lateness`` behind the IP's newest. Blocks an identity provider
reports hold for the reporting tenant's sign-ins only. The rule in full (counted failures,
buckets, release, reported blocks, envelope, state): docs/lockout.md#per-ip-blocking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.envelope import derive_event
from schemas.fields import PLATFORM_TENANT, LockoutScope, Outcome
from streams.folds import slots as sl
from streams.folds import window as w
from streams.folds.signals import client_ip
from streams.folds.thresholds import MAX_COUNT, IpAddress, NetworkList, parse_ip

SOURCE: Final = "factorstream://lockout/ip"
"""``source`` of the ``ip.block.*`` events this fold derives."""
REASON: Final = "credential_stuffing"
"""``reason`` of ``ip.block.applied``: one IP failing against many subjects."""
REPORTED: Final = "idp_reported"
"""``reason`` of ``ip.block.applied`` an identity provider's block derived."""
RELEASED: Final = "expired"
"""``reason`` of ``ip.block.released`` (the only way a block ends, for now)."""
TENANT: Final = PLATFORM_TENANT
"""Tenant of the ``ip.block.*`` events: the platform's (as audit checkpoints')."""
SUBJECT: Final = "ip-block"
"""Pseudonymous subject of the ``ip.block.*`` events."""
NOT_EVALUATED: Final = p.NOT_EVALUATED_REASONS
"""Failure reasons of attempts refused before any credential was checked (not counted)."""
MAX_WINDOW: Final = timedelta(days=1)
MAX_DURATION: Final = timedelta(days=90)
STATE_VERSION: Final = 2
MAX_REPORTING_TENANTS: Final = 64
"""Tenants whose reported blocks of one address the state keeps (bounded state)."""

JsonState = dict[str, Any]

_ACTIVITY = (
    p.LoginAttempted,
    p.VerificationFailed,
    p.VerificationSucceeded,
    p.RecoveryFailed,
    p.RecoverySucceeded,
)


@dataclass(frozen=True)
class IpBlockPolicy:
    """The thresholds of per-IP throttling (all times are event times)."""

    min_subjects: int = 20
    """Distinct subjects (``tenant/subject``) with a counted failure from one IP …"""
    window: timedelta = timedelta(minutes=15)
    """… within this window (whole slots overlapping it; at most a day) block the IP …"""
    duration: timedelta = timedelta(minutes=15)
    """… until this long after the end of the bucket (at most 90 days)."""
    exempt_networks: NetworkList = field(default_factory=lambda: NetworkList(name="exempt"))
    """Networks never blocked: failures from them are not counted (NAT gateways of an
    office or a partner that many people sign in through; operator-supplied)."""
    lateness: timedelta = sl.LATENESS
    """How far behind the IP's newest counted failure a failure may arrive and count (at
    most a day)."""

    def __post_init__(self) -> None:
        count = self.min_subjects
        good = type(count) is int and 2 <= count <= MAX_COUNT
        _require("min_subjects", good, f"an integer in 2..{MAX_COUNT}", count)
        for name, longest in (
            ("window", MAX_WINDOW),
            ("duration", MAX_DURATION),
            ("lateness", MAX_WINDOW),
        ):
            value = getattr(self, name)
            good = isinstance(value, timedelta) and timedelta(0) < value <= longest
            _require(name, good, f"a timedelta in (0, {longest}]", value)
        exempt = self.exempt_networks
        _require("exempt_networks", isinstance(exempt, NetworkList), "a NetworkList", exempt)

    @property
    def grid(self) -> sl.Grid:
        """Slots of ``window``; periods: the buckets, ``min(duration, window)`` long."""
        return _layout(self.window, self.duration, self.lateness, self.min_subjects)[0]


@dataclass(frozen=True)
class IpBlock:
    """A block: the IP is blocked from ``since`` (inclusive) until ``until``."""

    since: datetime
    until: datetime


Grid = tuple[int, int, int, int]
"""(Seconds per slot, seconds per bucket, duration in seconds, ``min_subjects``)."""


@dataclass(frozen=True)
class IpBlockState:
    """One IP's recent counted failures and its blocks (``IpBlockState()``: fresh)."""

    grid: Grid = (0, 0, 0, 0)
    """What the slots and buckets are numbered by, and the policy the blocks follow."""
    newest: int | None = None
    """The newest slot with a counted failure."""
    subjects: sl.SubjectSlots = field(default_factory=sl.SubjectSlots)
    blocks: Mapping[int, int] = field(default_factory=dict)
    """Buckets blocked that a failure to come can still change: bucket → the first slot of
    the bucket whose window met the rule (the block's start)."""
    block: IpBlock | None = None
    """The blocks no failure to come can change, merged: the block they make, in force or
    past, until its release."""
    reported: Mapping[str, IpBlock] = field(default_factory=dict)
    """Tenant → the latest block its identity provider reported
    (docs/lockout.md#reported-blocks)."""

    def to_dict(self) -> JsonState:
        block = self.block
        return {
            "version": STATE_VERSION,
            "grid": list(self.grid),
            "newest": self.newest,
            **self.subjects.to_json(),
            "blocks": [[b, self.blocks[b]] for b in sorted(self.blocks)],
            "block": _span_json(block),
            **(
                {"reported_by": {t: _span_json(b) for t, b in self.reported.items()}}
                if self.reported
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IpBlockState:
        """The inverse of :meth:`to_dict`; a malformed value raises ``ValueError``."""
        w.check_version(data, STATE_VERSION)
        (grid,) = sl.int_pairs({"grid": [data.get("grid", [0, 0, 0, 0])]}, "grid", 4)
        return cls(
            (grid[0], grid[1], grid[2], grid[3]),
            sl.optional_int(data, "newest"),
            sl.SubjectSlots.from_json(data),
            {b: since for b, since in sl.int_pairs(data, "blocks", 2)},
            _span(data.get("block"), "block"),
            _reported_spans(data.get("reported_by")),
        )

    def intervals(self, *, tenant: str | None = None) -> list[IpBlock]:
        """Every block known, as they chain (overlapping or touching ones merged): the
        platform's, and the block ``tenant``'s identity provider reported, if any."""
        slot, bucket, duration, _ = self.grid
        spans = [] if self.block is None else [self.block]
        for b in sorted(self.blocks):
            since = datetime.fromtimestamp(self.blocks[b] * slot, UTC)
            spans.append(IpBlock(since, datetime.fromtimestamp((b + 1) * bucket + duration, UTC)))
        reported = None if tenant is None else self.reported.get(tenant)
        if reported is not None:
            spans = sorted([*spans, reported], key=lambda span: span.since)
        found: list[IpBlock] = []
        for span in spans:
            last = found[-1] if found else None
            if last is not None and span.since <= last.until:
                found[-1] = IpBlock(last.since, max(last.until, span.until))
            else:
                found.append(span)
        return found


def _span_json(span: IpBlock | None) -> dict[str, str] | None:
    if span is None:
        return None
    return {"since": w.isoformat(span.since), "until": w.isoformat(span.until)}


def _reported_spans(raw: Any) -> dict[str, IpBlock]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"reported_by: expected an object of tenant → block, found {raw!r}")
    spans = {str(t): _span(b, f"reported_by.{t}") for t, b in raw.items()}
    return {t: b for t, b in spans.items() if b is not None}


def _span(raw: Any, name: str) -> IpBlock | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name}: expected an object with since and until, found {raw!r}")
    since = w.parse_time(raw.get("since"), f"{name}.since")
    return IpBlock(since, w.parse_time(raw.get("until"), f"{name}.until"))


@dataclass(frozen=True)
class IpBlockStatus:
    """Is an IP blocked at some time? (what the API answers and a verifier honours)"""

    blocked: bool
    until: datetime | None = None
    since: datetime | None = None
    reason: str | None = None
    failures: int | None = None
    distinct_subjects: int | None = None


def ip_block_status(
    state: IpBlockState, *, now: datetime, tenant: str | None = None
) -> IpBlockStatus:
    """The IP's block in force at ``now`` (timezone-aware) for a sign-in of ``tenant``, if
    any: since its start, until its end as far as the state knows (a bucket still to come
    may extend it). The platform's blocks hold for every tenant; a reported block only for
    the tenant that reported it (``tenant`` None: the platform's blocks alone)."""
    if now.tzinfo is None:
        raise ValueError("now: expected a timezone-aware datetime (UTC), found a naive one")
    for block in state.intervals():
        if block.since <= now < block.until:
            need = state.grid[3]
            return IpBlockStatus(True, block.until, block.since, REASON, need, need)
    if tenant is None or tenant not in state.reported:
        return IpBlockStatus(blocked=False)
    for block in state.intervals(tenant=tenant):  # reported, alone or extending ours
        if block.since <= now < block.until:
            return IpBlockStatus(True, block.until, block.since, REPORTED, 0, 0)
    return IpBlockStatus(blocked=False)


def ip_block_key(event: Event) -> str | None:
    """Key of per-IP throttling: the client IP (canonical text; IPv4-mapped IPv6 as IPv4) of
    a counted failure (:func:`counted_failure`), else ``None``: the fold reads nothing else,
    so nothing else is re-keyed to it (successes are most of the traffic)."""
    if not counted_failure(event):
        reported = _reported_ip(event)
        return None if reported is None else str(reported)
    address = _attempt_ip(event)
    return None if address is None else str(address)


def _attempt_ip(event: Event) -> IpAddress | None:
    return client_ip(event) if isinstance(event.data, _ACTIVITY) else None


def _reported_ip(event: Event) -> IpAddress | None:
    """The address of an identity provider's IP block, if ``event`` is one."""
    data = event.data
    if not isinstance(data, p.IdpLockReported) or data.scope is not LockoutScope.IP:
        return None
    try:
        return parse_ip(data.ip or "")
    except ValueError:  # the codec validated it; a hand-built event may not be
        return None


def counted_failure(event: Event) -> bool:
    """Does ``event`` count towards an IP block (docs/lockout.md#the-rule)?"""
    data = event.data
    if getattr(data, "reason", None) in NOT_EVALUATED:
        return False
    if isinstance(data, p.LoginAttempted):
        return data.outcome is Outcome.FAILURE
    return isinstance(data, p.VerificationFailed | p.RecoveryFailed)


def fold_ip_block(
    state: IpBlockState, event: Event, policy: IpBlockPolicy
) -> tuple[IpBlockState, list[Event]]:
    """Apply one event of one IP's stream; return the new state and the derived events."""
    if not counted_failure(event):  # before the address: most attempts are no counted failures
        if isinstance(event.data, p.IdpLockReported):
            return _reported(state, event, event.data, policy)
        return state, []
    address = _attempt_ip(event)
    if address is None or policy.exempt_networks.match(address) is not None:
        return state, []
    grid, key = _layout(policy.window, policy.duration, policy.lateness, policy.min_subjects)
    need = policy.min_subjects
    base = state if state.grid == key else IpBlockState(grid=key)  # another policy: afresh
    slot, newest = grid.slot_of(event.time), base.newest
    if newest is not None and slot < newest - grid.late:
        return state, []  # too late to count: more than lateness behind the newest
    subjects = base.subjects.add(slot, event.partitionkey, need)
    advanced = newest is None or slot > newest
    if base is state and subjects is base.subjects and not advanced:
        return state, []
    derived: list[Event] = []
    blocks: Mapping[int, int] = base.blocks
    if subjects is not base.subjects:  # windows holding this slot may meet the rule now
        changed: dict[int, int] | None = None
        for end in subjects.slots_in(slot, slot + grid.span):
            bucket = grid.period_of(end)
            since = blocks.get(bucket)
            if since is not None and since <= end:
                continue  # blocked from an earlier slot already
            if not subjects.met(end - grid.span, end, need):
                continue
            if changed is None:
                blocks = changed = dict(blocks)
            if since is None:
                derived.append(_applied(str(address), bucket, grid, policy))
            changed[bucket] = end
    block = base.block
    if advanced:  # settle the blocks no failure to come can change; forget the rest
        newest = slot
        horizon = (slot - grid.late) * grid.slot  # no failure to come is older (seconds)
        settled = sorted(b for b in blocks if (b + 1) * grid.period <= horizon)
        if settled:
            chain = IpBlockState(key, block=block, blocks={b: blocks[b] for b in settled})
            *ended, block = chain.intervals()
            derived += [_released(str(address), done, key) for done in ended]
            blocks = {b: since for b, since in blocks.items() if b not in settled}
        if block is not None and _bucket_end(block.until, grid.period) <= horizon:
            derived.append(_released(str(address), block, key))
            block = None
        subjects = subjects.since(slot - grid.late - grid.span)
    return IpBlockState(key, newest, subjects, blocks, block, base.reported), derived


def _reported(
    state: IpBlockState, event: Event, report: p.IdpLockReported, policy: IpBlockPolicy
) -> tuple[IpBlockState, list[Event]]:
    """A provider's block of an address as ours (docs/lockout.md#reported-blocks)."""
    address = _reported_ip(event)
    until = report.locked_until or event.time + policy.duration
    if address is None or policy.exempt_networks.match(address) is not None:
        return state, []
    if until <= event.time:
        return state, []
    key = _layout(policy.window, policy.duration, policy.lateness, policy.min_subjects)[1]
    base = state if state.grid == key else IpBlockState(grid=key)
    tenant = event.tenant
    if report.locked_until is None and ip_block_status(base, now=event.time, tenant=tenant).blocked:
        return state, []  # a repeat of a block in force (providers repeat it per attempt)
    span, known = IpBlock(event.time, until), base.reported.get(tenant)
    if known is not None and span.since <= known.until and known.since <= span.until:
        span = IpBlock(min(known.since, span.since), max(known.until, span.until))
    elif known is not None and known.until > span.until:
        span = known
    kept = {t: b for t, b in base.reported.items() if b.until > event.time and t != tenant}
    kept = dict(sorted(kept.items(), key=lambda item: item[1].until)[1 - MAX_REPORTING_TENANTS :])
    ip = str(address)
    payload = p.IpBlockApplied(
        ip=ip,
        reason=REPORTED,
        blocked_until=until,
        failures=0,
        distinct_subjects=0,
        trigger_event_id=event.id,
        only_tenant=tenant,
    )
    derived = derive_event(
        event, payload, source=SOURCE, what=f"reported/{ip}", tenant=tenant, subject=SUBJECT
    )
    return replace(base, reported={**kept, tenant: span}), [derived]


@lru_cache(maxsize=16)
def _layout(
    window: timedelta, duration: timedelta, lateness: timedelta, need: int
) -> tuple[sl.Grid, Grid]:
    """The policy's grid, and what a state records of it (see :attr:`IpBlockState.grid`)."""
    grid = sl.make_grid(window, min(duration, window), lateness)
    return grid, (grid.slot, grid.period, int(duration.total_seconds()), need)


def _bucket_end(at: datetime, bucket: int) -> int:
    """The end (Unix seconds) of the bucket holding ``at``: once no failure to come is
    older, no bucket can start a block at or before ``at`` any more."""
    return (int(at.timestamp()) // bucket + 1) * bucket


def _applied(ip: str, bucket: int, grid: sl.Grid, policy: IpBlockPolicy) -> Event:
    """The block of ``bucket``: a function of its arguments alone."""
    start = grid.period_start(bucket)
    payload = p.IpBlockApplied(
        ip=ip,
        reason=REASON,
        blocked_until=grid.period_start(bucket + 1) + policy.duration,
        failures=policy.min_subjects,
        distinct_subjects=policy.min_subjects,
    )
    duration = int(policy.duration.total_seconds())
    what = f"{ip}|{grid.slot}|{grid.period}|{duration}|{policy.min_subjects}|{bucket}"
    return _derived(payload, start, what)


def _released(ip: str, block: IpBlock, key: Grid) -> Event:
    what = f"{ip}|{'|'.join(map(str, key))}|{w.isoformat(block.until)}"
    return _derived(p.IpBlockReleased(ip=ip, reason=RELEASED), block.until, what)


def _derived(payload: p.Payload, at: datetime, what: str) -> Event:
    return sl.derived_event(
        payload, source=SOURCE, tenant=TENANT, subject=SUBJECT, at=at, what=what
    )


def _require(name: str, ok: bool, expected: str, found: object) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, found {found!r}")

"""Per-IP throttling: an IP failing against many subjects is blocked for a while.

The lockout fold (``verifiers.lockout``) protects one subject from guesses; credential
stuffing and password spraying try one or two passwords against each of many subjects and
never trip it. This fold runs per client IP (:func:`ip_block_key`; the stream re-keys by IP
through an internal topic) and is part of lockout: its events go to the lockouts topic.

**Rule** (thresholds: :class:`IpBlockPolicy`):

* A *counted failure* is a failed first-factor login (``auth.login.attempted`` with outcome
  ``failure``), a failed second factor (``mfa.verification.failed``) or a failed recovery
  code (``mfa.recovery.failed``) carrying ``client.ip`` — except attempts the gate refused
  unseen (reason ``locked_out``, as in the lockout fold): they are no guesses, and counting
  them would let a blocked IP's refused attempts extend its own block for ever. Failures
  from an IP in ``exempt_networks`` are not counted (an operator's NAT gateways).
* Each counted failure marks its subject (``tenant/subject``: subjects of different tenants
  are different people). When ``min_subjects`` distinct subjects have a counted failure
  from the IP within ``window`` (inclusive), the IP is blocked for ``duration`` from that
  failure: ``ip.block.applied`` with ``blocked_until``, ``distinct_subjects`` (the marks:
  exactly ``min_subjects``) and ``failures`` (every counted failure of the IP in the whole
  UTC minutes overlapping the window — repeated failures against one subject count here,
  once each, but not towards ``distinct_subjects``).
* Applying a block starts the count afresh. Failures during a block are counted (a service
  that does not honour the block still evaluated real guesses) but apply nothing.
* Expiry is noticed lazily, as in the lockout fold: the first event of the IP
  (:func:`ip_block_key`) at or after ``blocked_until`` emits ``ip.block.released`` with
  reason ``expired``, before the event itself is counted — so an IP that kept failing
  against ``min_subjects`` subjects within the window is blocked again at once.
  :func:`ip_block_status` answers at any time without waiting for that event.
* Successes neither count nor reset anything (a stuffing run's hits are successes).

**Envelope**: an IP block belongs to no subject, yet every event has one; a derived event
takes the tenant, subject, correlation and time of its trigger (:func:`schemas.derive_event`)
— for ``ip.block.applied`` the failure that completed the count, for ``ip.block.released``
the event that noticed the expiry — so it is keyed by that trigger's ``partitionkey`` and
the IP is in ``data.ip``. Ids are deterministic (trigger id, type, IP): a replay derives the
same events.

**State** (per IP): the newest counted failure of at most ``min_subjects`` subjects (labels
``tenant/subject``, which leave within ``window``), failure counts per UTC minute of the
window, and the block in force. It holds no other personal data; erasing a subject does
not reach it (its label is gone within ``window``, at most a day).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.envelope import derive_event
from schemas.fields import Outcome
from streams.folds import window as w
from streams.folds.signals import client_ip
from streams.folds.thresholds import MAX_COUNT, IpAddress, NetworkList

SOURCE: Final = "factorstream://lockout/ip"
"""``source`` of the ``ip.block.*`` events this fold derives."""
REASON: Final = "credential_stuffing"
"""``reason`` of ``ip.block.applied``: one IP failing against many subjects."""
RELEASED: Final = "expired"
"""``reason`` of ``ip.block.released`` (the only way a block ends, for now)."""
NOT_EVALUATED: Final = frozenset({"locked_out"})
"""Failure reasons of attempts refused before any credential was checked (not counted)."""
MAX_WINDOW: Final = timedelta(days=1)
MAX_DURATION: Final = timedelta(days=90)
STATE_VERSION: Final = 1

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
    """… within this window (inclusive; at most a day) block the IP …"""
    duration: timedelta = timedelta(minutes=15)
    """… for this long from the failure that completed the count (at most 90 days)."""
    exempt_networks: NetworkList = field(default_factory=lambda: NetworkList(name="exempt"))
    """Networks never blocked: failures from them are not counted (NAT gateways of an
    office or a partner that many people sign in through; operator-supplied)."""

    def __post_init__(self) -> None:
        count = self.min_subjects
        good = type(count) is int and 2 <= count <= MAX_COUNT
        _require("min_subjects", good, f"an integer in 2..{MAX_COUNT}", count)
        for name, longest in (("window", MAX_WINDOW), ("duration", MAX_DURATION)):
            value = getattr(self, name)
            good = isinstance(value, timedelta) and timedelta(0) < value <= longest
            _require(name, good, f"a timedelta in (0, {longest}]", value)
        exempt = self.exempt_networks
        _require("exempt_networks", isinstance(exempt, NetworkList), "a NetworkList", exempt)


@dataclass(frozen=True)
class IpBlock:
    """A block applied to an IP."""

    since: datetime
    until: datetime
    failures: int
    distinct_subjects: int
    trigger_event_id: str


@dataclass(frozen=True)
class IpBlockState:
    """One IP's recent counted failures and the block in force (``IpBlockState()``: fresh)."""

    marks: w.Marks = ()
    """The newest counted failure of each subject in the window (label ``tenant/subject``),
    at most ``min_subjects`` of them."""
    minutes: tuple[tuple[int, int], ...] = ()
    """(Unix minute, counted failures) of the minutes overlapping the window, oldest first."""
    block: IpBlock | None = None
    """The block applied last, until its expiry is noticed (it may lie in the past)."""

    def to_dict(self) -> JsonState:
        block = self.block
        return {
            "version": STATE_VERSION,
            "marks": w.marks_to_json(self.marks),
            "minutes": [[minute, n] for minute, n in self.minutes],
            "block": None
            if block is None
            else {
                "since": block.since.isoformat(),
                "until": block.until.isoformat(),
                "failures": block.failures,
                "distinct_subjects": block.distinct_subjects,
                "trigger_event_id": block.trigger_event_id,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IpBlockState:
        """The inverse of :meth:`to_dict`; a malformed value raises ``ValueError``."""
        w.check_version(data, STATE_VERSION)
        minutes = data.get("minutes", [])
        if not isinstance(minutes, list) or not all(
            isinstance(item, list) and len(item) == 2 and all(type(v) is int for v in item)
            for item in minutes
        ):
            raise ValueError(f"minutes: expected [minute, count] pairs, found {minutes!r}")
        raw = data.get("block")
        block = None
        if raw is not None:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("trigger_event_id"), str):
                raise ValueError(f"block: expected an object with trigger_event_id, found {raw!r}")
            block = IpBlock(
                since=w.parse_time(raw.get("since"), "block.since"),
                until=w.parse_time(raw.get("until"), "block.until"),
                failures=w.count(raw, "failures"),
                distinct_subjects=w.count(raw, "distinct_subjects"),
                trigger_event_id=raw["trigger_event_id"],
            )
        pairs = tuple(sorted((m, n) for m, n in minutes))
        return cls(w.marks_from_json(data, "marks"), pairs, block)


@dataclass(frozen=True)
class IpBlockStatus:
    """Is an IP blocked at some time? (what the API answers and a verifier honours)"""

    blocked: bool
    until: datetime | None = None
    since: datetime | None = None
    reason: str | None = None
    failures: int | None = None
    distinct_subjects: int | None = None


def ip_block_status(state: IpBlockState, *, now: datetime) -> IpBlockStatus:
    """The IP's block in force at ``now`` (timezone-aware), if any."""
    if now.tzinfo is None:
        raise ValueError("now: expected a timezone-aware datetime (UTC), found a naive one")
    block = state.block
    if block is None or not block.since <= now < block.until:
        return IpBlockStatus(blocked=False)
    return IpBlockStatus(
        True, block.until, block.since, REASON, block.failures, block.distinct_subjects
    )


def ip_block_key(event: Event) -> str | None:
    """Key of per-IP throttling: the client IP (canonical text; IPv4-mapped IPv6 as IPv4) of
    a sign-in attempt — login, second factor or recovery code, either outcome — else
    ``None`` (the event is not forwarded to the fold)."""
    address = _attempt_ip(event)
    return None if address is None else str(address)


def _attempt_ip(event: Event) -> IpAddress | None:
    return client_ip(event) if isinstance(event.data, _ACTIVITY) else None


def counted_failure(event: Event) -> bool:
    """Does ``event`` count towards an IP block (see the module docstring)?"""
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
    address = _attempt_ip(event)
    if address is None:
        return state, []
    ip, now, derived = str(address), event.time, []
    if state.block is not None and now >= state.block.until:
        derived.append(_derive(event, p.IpBlockReleased(ip=ip, reason=RELEASED), ip))
        state = replace(state, block=None)
    if not counted_failure(event) or policy.exempt_networks.match(address) is not None:
        return state, derived
    mark = w.Mark(now, event.id, event.partitionkey)
    marks = w.latest_per_label(
        (*state.marks, mark), now=now, window=policy.window, keep=policy.min_subjects
    )
    minutes, failures = _count_minute(state.minutes, now, policy.window)
    if state.block is not None or len(marks) < policy.min_subjects:
        return IpBlockState(marks, minutes, state.block), derived
    until = now + policy.duration
    block = IpBlock(now, until, failures, len(marks), event.id)
    payload = p.IpBlockApplied(
        ip=ip,
        reason=REASON,
        blocked_until=until,
        failures=failures,
        distinct_subjects=len(marks),
        trigger_event_id=event.id,
    )
    derived.append(_derive(event, payload, ip))
    return IpBlockState(block=block), derived  # a block starts the count afresh


def _count_minute(
    minutes: tuple[tuple[int, int], ...], now: datetime, window: timedelta
) -> tuple[tuple[tuple[int, int], ...], int]:
    """The failure counted in its minute: the counts to keep (the minutes that can still
    overlap a window, at most ``ceil(window / 1 min) + 1``) and the failures of the minutes
    overlapping ``[now - window, now]``."""
    minute = int(now.timestamp() // 60)
    first = math.floor((now - window).timestamp() / 60)
    counts = dict(minutes)
    counts[minute] = counts.get(minute, 0) + 1
    oldest = max(counts) - math.ceil(window.total_seconds() / 60)  # out of order: keep newer
    kept = tuple(sorted((m, n) for m, n in counts.items() if m >= oldest))
    return kept, sum(n for m, n in kept if first <= m <= minute)


def _require(name: str, ok: bool, expected: str, found: object) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, found {found!r}")


def _derive(trigger: Event, payload: p.Payload, ip: str) -> Event:
    return derive_event(trigger, payload, source=SOURCE, what=f"ip/{ip}")


Step = Callable[[JsonState | None, Event], tuple[JsonState | None, list[Event]]]


def ip_block_step(policy: IpBlockPolicy) -> Step:
    """:func:`fold_ip_block` over a table's stored form: ``(stored, event) -> (stored,
    derived)``; an unchanged state comes back as the very ``stored`` object (``None`` for an
    IP the event did not touch), so the caller can skip the write."""
    return partial(_step, policy)


def _step(
    policy: IpBlockPolicy, stored: JsonState | None, event: Event
) -> tuple[JsonState | None, list[Event]]:
    before = IpBlockState() if stored is None else IpBlockState.from_dict(stored)
    after, derived = fold_ip_block(before, event, policy)
    return (stored if after == before else after.to_dict()), derived

"""Password spray: one IP failing first-factor sign-ins against many people.

:func:`fold_password_spray` runs per client IP (:func:`~streams.folds.signals.spray_key`):
``spray_min_subjects`` distinct subjects failing from the IP within ``spray_window`` fire
once per UTC-aligned period of ``cooldown``, a ``risk.detected`` (score 75, high) for each
tenant with a failure from the IP in that period or the one before, under the pseudonymous
subject :data:`SUBJECT`, at the period's start. The rule is stated on event time alone
(the model: :mod:`streams.folds.slots`): what it derives does not depend on which failure
arrived last, and a failure more than :data:`~streams.folds.slots.LATENESS` older than
the IP's newest is not counted. The rule in full: docs/detections.md#password-spray.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import Client, Outcome
from schemas.payloads import Detection, EvidenceValue
from streams.folds import slots as sl
from streams.folds import window as w
from streams.folds.signals import SOURCE, client_ip, severity_for
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION: Final = 2
SUBJECT: Final = "password-spray"
"""The pseudonymous subject of the detections (they belong to an IP, not to a person)."""
SCORE: Final = 75

Tenants = Mapping[int, frozenset[str]]


@dataclass(frozen=True)
class SprayState:
    """One IP's recent failed logins by slot, its tenants by period, the periods fired."""

    grid: tuple[int, int] = (0, 0)
    """(Seconds per slot, seconds per period) the slots are numbered by."""
    newest: int | None = None
    """The newest slot with a failure."""
    subjects: sl.SubjectSlots = field(default_factory=sl.SubjectSlots)
    tenants: Tenants = field(default_factory=dict)
    """Tenants with a failure from the IP, by period."""
    fired: frozenset[int] = frozenset()
    """Periods the rule fired in."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "grid": list(self.grid),
            "newest": self.newest,
            **self.subjects.to_json(),
            "tenants": [[q, sorted(self.tenants[q])] for q in sorted(self.tenants)],
            "fired": sorted(self.fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SprayState:
        w.check_version(data, STATE_VERSION)
        (grid,) = sl.int_pairs({"grid": [data.get("grid", [0, 0])]}, "grid", 2)
        tenants = data.get("tenants", [])
        if not isinstance(tenants, list) or not all(
            isinstance(item, list)
            and len(item) == 2
            and type(item[0]) is int
            and isinstance(item[1], list)
            and all(isinstance(t, str) for t in item[1])
            for item in tenants
        ):
            raise ValueError(f"tenants: expected [[period, [tenant, ...]], ...], found {tenants!r}")
        return cls(
            (grid[0], grid[1]),
            sl.optional_int(data, "newest"),
            sl.SubjectSlots.from_json(data),
            {q: frozenset(names) for q, names in tenants},
            frozenset(sl.int_list(data, "fired")),
        )


def fold_password_spray(
    state: SprayState, event: Event, thresholds: DetectionThresholds
) -> tuple[SprayState, list[Event]]:
    """Apply one event of one IP's stream (the rule: docs/detections.md#password-spray)."""
    data = event.data  # what spray_key keys, without the address's text (made if it fires)
    if not isinstance(data, p.LoginAttempted) or data.outcome is not Outcome.FAILURE:
        return state, []
    address = client_ip(event)
    if address is None:
        return state, []
    grid = sl.make_grid(thresholds.spray_window, thresholds.cooldown)
    key = (grid.slot, grid.period)
    base = state if state.grid == key else SprayState(grid=key)  # new numbering: afresh
    slot, newest = grid.slot_of(event.time), base.newest
    if newest is not None and slot < newest - grid.late:
        return state, []  # too late to count: more than LATENESS behind the newest
    need, tenant = thresholds.spray_min_subjects, event.tenant
    period = grid.period_of(slot)
    subjects = base.subjects.add(slot, event.partitionkey, need)
    known = base.tenants.get(period, frozenset())
    advanced = newest is None or slot > newest
    if base is state and subjects is base.subjects and tenant in known and not advanced:
        return state, []
    tenants = base.tenants if tenant in known else {**base.tenants, period: known | {tenant}}
    fresh: list[int] = []
    if subjects is not base.subjects:  # windows holding this slot may meet the rule now
        for end in subjects.slots_in(slot, slot + grid.span):
            q = grid.period_of(end)
            if q not in base.fired and q not in fresh and subjects.met(end - grid.span, end, need):
                fresh.append(q)
    derived = [
        _risk(str(address), q, name, grid, thresholds)
        for q in fresh
        for name in sorted(tenants.get(q - 1, frozenset()) | tenants.get(q, frozenset()))
    ]
    if tenant not in known:  # a tenant joining a period the rule already fired in
        for q in (period, period + 1):
            before = base.tenants.get(q - 1, frozenset()) | base.tenants.get(q, frozenset())
            if q in base.fired and tenant not in before:
                derived.append(_risk(str(address), q, tenant, grid, thresholds))
    fired = base.fired | frozenset(fresh) if fresh else base.fired
    if advanced:  # forget what no failure still to come can reach
        newest, lowest = slot, slot - grid.late
        first = grid.period_of(lowest)
        subjects = subjects.since(lowest - grid.span)
        if min(tenants, default=first) < first - 1:
            tenants = {q: names for q, names in tenants.items() if q >= first - 1}
        if min(fired, default=first) < first:
            fired = frozenset(q for q in fired if q >= first)
    return SprayState(key, newest, subjects, tenants, fired), derived


def _risk(
    ip: str, period: int, tenant: str, grid: sl.Grid, thresholds: DetectionThresholds
) -> Event:
    """The detection of ``period`` for ``tenant``: a function of its arguments alone."""
    start, need = grid.period_start(period), thresholds.spray_min_subjects
    window = thresholds.spray_window
    summary = (
        f"Failed sign-ins against {need} or more different subjects from one IP within "
        f"{w.duration_text(window)} ({grid.slots_text(grid.span + 1)}), in the "
        f"{w.duration_text(timedelta(seconds=grid.period))} from {start:%Y-%m-%d %H:%M} UTC"
    )
    evidence: dict[str, EvidenceValue] = {
        "threshold": need,
        "window_seconds": int(window.total_seconds()),
        "period_start": w.isoformat(start),
        "period_seconds": grid.period,
    }
    payload = p.RiskDetected(
        detection=Detection.PASSWORD_SPRAY,
        severity=severity_for(SCORE),
        score=SCORE,
        summary=summary,
        evidence=evidence,
        client=Client(ip=ip),
    )
    what = f"{Detection.PASSWORD_SPRAY}|{ip}|{grid.slot}|{grid.period}|{period}|{tenant}"
    return sl.derived_event(
        payload, source=SOURCE, tenant=tenant, subject=SUBJECT, at=start, what=what
    )

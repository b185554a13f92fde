"""The sign-in rollups change how fast the subject-counting queries answer, never what they
answer: on a synthetic lake, every query over many windows and filters gives the same
result with the rollups as from the raw files alone, also after late events and
recompaction, and the rollups do serve the whole days they cover."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics import rollups
from analytics.compaction import compact
from analytics.lake import LakeWriter, partitions
from analytics.queries import (
    Filters,
    device_distribution,
    mfa_adoption,
    overview_kpis,
    policy_tiers,
    privileged_role_coverage,
    sign_in_geography,
    time_to_complete,
)
from analytics.views import connect
from factorstream.bench.lake_data import START, batches, events_table
from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Factor, Outcome
from tests.factories import CLIENT

DAYS = 5
QUERIES = (
    device_distribution,
    sign_in_geography,
    policy_tiers,
    mfa_adoption,
    time_to_complete,
    overview_kpis,
    privileged_role_coverage,
)
D0 = START
Window = tuple[datetime | None, datetime | None]
WINDOWS: list[Window] = [
    (None, None),
    (D0, None),
    (None, D0 + timedelta(days=2)),
    (D0 + timedelta(days=1), D0 + timedelta(days=3)),  # whole days
    (D0 + timedelta(hours=30), D0 + timedelta(days=3, hours=5)),  # cut days at both ends
    (D0 + timedelta(days=2), D0 + timedelta(days=2, hours=1)),  # one hour
    (D0 + timedelta(days=9), None),  # nothing
]
FILTERS = [
    {},
    {"tenant": "tenant-1"},
    {"factor": "totp"},
    {"application": "app-2", "tenant": "tenant-2"},
    {"tenant": "nobody'; DROP TABLE events; --"},
]


def _lake(path: Path) -> Path:
    writer = LakeWriter(path)
    for batch in batches(events_table(20_000, days=DAYS), 2_500):
        writer.write(batch)
    return path


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same lake compacted with its rollups, and a copy without them."""
    rolled = _lake(tmp_path_factory.mktemp("rolled") / "lake")
    compact(rolled, min_files=2)
    raw = tmp_path_factory.mktemp("raw") / "lake"
    shutil.copytree(rolled, raw, symlinks=True)
    rollups.remove(raw)
    return rolled, raw


def _answers(lake: Path, windows: list[Window] = WINDOWS) -> list[pd.DataFrame]:
    con = connect(lake)
    try:
        return [
            query(con, Filters(since=since, until=until, **chosen))  # type: ignore[arg-type]
            for since, until in windows
            for chosen in FILTERS
            for query in QUERIES
        ]
    finally:
        con.close()


def _same(left: list[pd.DataFrame], right: list[pd.DataFrame]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_the_rollups_cover_every_day_the_newest_in_its_own(lakes: tuple[Path, Path]) -> None:
    rolled, _ = lakes
    days = [day for day, _ in partitions(rolled, "events")][1:]  # the seed day first
    plan = rollups.plan(rolled, None, None)
    assert plan.days == days and len(days) == DAYS
    # the month's days but the newest, and the newest day (still being written) on its own
    assert plan.months == [D0.date(), days[-1]] and plan.masks == [0b1111, 1]
    assert plan.completed == plan.days and plan.complete_masks == plan.masks
    assert plan.raw == [name for name in plan.raw if "1970-01-01" in name]  # the seed only
    for generation in rollups.generations(rolled).values():
        assert sorted(path.name for path in generation.iterdir()) == sorted(rollups.FILES)
    cut = rollups.plan(rolled, D0 + timedelta(hours=30), D0 + timedelta(days=3, hours=5))
    assert cut.days == [days[2]]  # only the whole day inside the window


def test_yesterdays_rollup_goes_into_its_month_when_a_new_day_begins(
    lakes: tuple[Path, Path], tmp_path: Path
) -> None:
    rolled = tmp_path / "rolled"
    shutil.copytree(lakes[0], rolled, symlinks=True)
    newest = D0.date() + timedelta(days=DAYS - 1)
    tomorrow = datetime.combine(newest + timedelta(days=1), datetime.min.time(), UTC)
    LakeWriter(rolled).write_events(
        [
            new_event(
                p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=CLIENT),
                source="https://login.example.com/mfa",
                tenant="tenant-1",
                subject="u-tomorrow",
                correlationid="tomorrow-1",
                now=tomorrow,
            )
        ]
    )
    assert rollups.refresh(rolled) == [D0.date(), tomorrow.date()]
    assert sorted(rollups.generations(rolled)) == [D0.date(), tomorrow.date()]
    plan = rollups.plan(rolled, None, None)
    assert plan.masks == [0b11111, 1] and plan.completed == plan.days
    assert rollups.refresh(rolled) == []


def test_every_query_answers_the_same_with_and_without_the_rollups(
    lakes: tuple[Path, Path],
) -> None:
    rolled, raw = lakes
    with_rollups, without = _answers(rolled), _answers(raw)
    _same(with_rollups, without)
    assert any(not frame.empty for frame in with_rollups)
    assert with_rollups[0]["sign_ins"].sum() > 10_000
    adoption = with_rollups[QUERIES.index(mfa_adoption)]  # the whole lake, no filter
    assert adoption["enrolled_subjects"].sum() > 0 and adoption["day"].nunique() == DAYS
    assert with_rollups[QUERIES.index(time_to_complete)]["completions"].sum() > 100
    coverage = with_rollups[QUERIES.index(privileged_role_coverage)]
    assert len(coverage) > 10 and coverage["other_sign_ins"].sum() > 0
    assert coverage["role"].notna().any() and coverage["role"].isna().any()  # tier only


def test_a_late_event_on_a_rolled_up_day_is_counted_once(
    lakes: tuple[Path, Path], tmp_path: Path
) -> None:
    """A late sign-in lands in a day the rollup covers: that day is read raw until the
    next compaction rolls it up again, and the answers stay equal to the raw ones."""
    rolled, raw = (tmp_path / "rolled", tmp_path / "raw")
    shutil.copytree(lakes[0], rolled, symlinks=True)
    shutil.copytree(lakes[1], raw, symlinks=True)
    late = new_event(
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=CLIENT),
        source="https://login.example.com/mfa",
        tenant="tenant-1",
        subject="u-late",
        correlationid="late-1",
        now=datetime.combine(D0.date() + timedelta(days=1), datetime.min.time(), UTC),
    )
    late_day = D0.date() + timedelta(days=1)
    # ... and a late challenge of a verification two days on: its time to complete grows
    challenge = _earlier_challenge(raw, "ch-late", lambda verified: verified - timedelta(days=1))
    # ... and a late privileged prompt of a subject who signed in on the other days: their
    # sign-ins there, which the rollups hold, count for the privileged-role coverage
    con = connect(raw)
    promoted, successes = con.execute(
        "SELECT subject, count(*) FROM verifications WHERE success AND tenant = 'tenant-1' "
        "AND subject NOT IN (SELECT subject FROM events WHERE policy_tier = 'admin' "
        "OR role IS NOT NULL) GROUP BY subject "
        "HAVING count(DISTINCT date) >= 2 AND bool_or(date < $late) ORDER BY subject LIMIT 1",
        {"late": late_day},
    ).fetchone()  # type: ignore[misc]
    con.close()
    prompt = new_event(
        p.MfaRequired(required=True, role="Root", application="app-0"),
        source="https://login.example.com/mfa",
        tenant="tenant-1",
        subject=promoted,
        correlationid="late-2",
        now=datetime.combine(late_day, datetime.min.time(), UTC) + timedelta(hours=2),
    )
    for lake in (rolled, raw):
        LakeWriter(lake).write_events([late, challenge, prompt])
    stale = rollups.plan(rolled, None, None)
    assert late_day not in stale.days and D0.date() in stale.days
    # its challenges may be looked up by any later day's verifications: those wait too
    assert stale.completed == [D0.date()]
    _same(_answers(rolled, WINDOWS[:4]), _answers(raw, WINDOWS[:4]))
    con = connect(rolled)
    coverage = privileged_role_coverage(con, Filters(tenant="tenant-1"))
    con.close()
    row = coverage.set_index("subject").loc[promoted]
    assert row["role"] == "root"
    assert row["phishing_resistant_sign_ins"] + row["other_sign_ins"] == successes
    # the month's rollup, and the newest day's (whose completions read the days before)
    assert rollups.refresh(rolled) == [D0.date(), D0.date() + timedelta(days=DAYS - 1)]
    assert D0.date() + timedelta(days=1) in rollups.plan(rolled, None, None).days
    _same(_answers(rolled, WINDOWS[:4]), _answers(raw, WINDOWS[:4]))
    assert rollups.refresh(rolled) == []  # nothing changed since: nothing built


def test_a_verification_looked_up_now_finds_its_challenge_on_a_rolled_up_day(
    lakes: tuple[Path, Path], tmp_path: Path
) -> None:
    """The newest day's completions are looked up at query time, in the challenges of the
    days the ``transactions`` rollup names: a verification on the newest day of a
    transaction challenged on the first day finds that challenge."""
    rolled, raw = (tmp_path / "rolled", tmp_path / "raw")
    shutil.copytree(lakes[0], rolled, symlinks=True)
    shutil.copytree(lakes[1], raw, symlinks=True)
    con = connect(raw)
    tenant, subject, correlation, factor, issued = con.execute(
        "SELECT tenant, subject, correlationid, factor, time FROM challenges "
        "WHERE status = 'issued' AND date = $day ORDER BY id LIMIT 1",
        {"day": D0.date()},
    ).fetchone()  # type: ignore[misc]
    con.close()
    newest = datetime.combine(D0.date() + timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    verified = new_event(
        p.VerificationSucceeded(factor=Factor(factor), application="app-late"),
        source="https://login.example.com/mfa",
        tenant=tenant,
        subject=subject,
        correlationid=correlation,
        now=newest + timedelta(hours=1),
    )
    # ... and the late failure of an SMS sent on the first day: one challenge, now failed
    con = connect(raw)
    sms_tenant, sms_subject, sms_id, provider = con.execute(
        "SELECT tenant, subject, challenge_id, provider FROM challenges WHERE channel = 'sms' "
        "AND status = 'sent' AND date = $day AND challenge_id NOT IN (SELECT challenge_id "
        "FROM challenges WHERE status = 'delivery_failed') ORDER BY id LIMIT 1",
        {"day": D0.date()},
    ).fetchone()  # type: ignore[misc]
    twice = con.execute(  # ... and one that failed on the first day already, failing again
        "SELECT subject, challenge_id FROM challenges WHERE status = 'delivery_failed' "
        "AND date = $day AND tenant = $tenant ORDER BY id LIMIT 1",
        {"day": D0.date(), "tenant": sms_tenant},
    ).fetchone()
    assert twice is not None
    attempted, failures = con.execute(
        "SELECT count(DISTINCT challenge_id), "
        "count(DISTINCT challenge_id) FILTER (WHERE status = 'delivery_failed') FROM challenges "
        "WHERE channel = 'sms' AND status IN ('sent', 'delivery_failed') AND tenant = $tenant",
        {"tenant": sms_tenant},
    ).fetchone()  # type: ignore[misc]
    con.close()
    failed = [
        new_event(
            p.ChallengeDeliveryFailed(
                factor=Factor.SMS,
                challenge_id=challenge,
                channel="sms",
                provider=provider,
                reason="late",
            ),
            source="https://login.example.com/mfa",
            tenant=sms_tenant,
            subject=subject,
            correlationid=f"late-{challenge}",
            now=newest + timedelta(hours=2),
        )
        for subject, challenge in [(sms_subject, sms_id), twice]
    ]
    for lake in (rolled, raw):
        LakeWriter(lake).write_events([verified, *failed])
    con = connect(rolled)
    after = overview_kpis(con, Filters(tenant=sms_tenant))["sms_delivery_failure_rate"][0]
    con.close()
    assert after == pytest.approx((failures + 1) / attempted)  # the same challenges, once
    plan = rollups.plan(rolled, None, None)
    assert D0.date() in plan.indexed and newest.date() not in plan.indexed
    con = connect(rolled)
    assert any(D0.date().isoformat() in name for name in rollups.challenges_to_look_up(con, plan))
    (answer,) = time_to_complete(con, Filters(application="app-late")).itertuples()
    con.close()
    assert answer.completions == 1
    assert answer.p50_ms == pytest.approx((verified.time - issued).total_seconds() * 1000, abs=1)
    _same(_answers(rolled, WINDOWS[:2]), _answers(raw, WINDOWS[:2]))
    # once the newest day is rolled up again, the challenge sent on the first day and failed
    # on the newest is counted from the rollups without grouping by id: still once
    assert newest.date() in rollups.refresh(rolled)
    plan = rollups.plan(rolled, None, None)
    assert plan.rolled and not plan.raw_days and plan.all_completed
    con = connect(rolled)
    again = overview_kpis(con, Filters(tenant=sms_tenant))["sms_delivery_failure_rate"][0]
    con.close()
    assert again == pytest.approx((failures + 1) / attempted)
    _same(_answers(rolled, WINDOWS[:2]), _answers(raw, WINDOWS[:2]))


def test_a_late_challenge_on_a_new_day_before_all_others_is_looked_up(
    lakes: tuple[Path, Path], tmp_path: Path
) -> None:
    """A challenge dated before the lake's first day makes a new partition that no rollup
    was built from: every completion after it is looked up again, not taken as rolled up."""
    rolled, raw = (tmp_path / "rolled", tmp_path / "raw")
    shutil.copytree(lakes[0], rolled, symlinks=True)
    shutil.copytree(lakes[1], raw, symlinks=True)
    challenge = _earlier_challenge(raw, "ch-early", lambda _: D0 - timedelta(hours=12))
    for lake in (rolled, raw):
        LakeWriter(lake).write_events([challenge])
    plan = rollups.plan(rolled, None, None)
    assert plan.days and plan.completed == []  # the days rolled up, their completions not
    _same(_answers(rolled, WINDOWS[:2]), _answers(raw, WINDOWS[:2]))


def _earlier_challenge(
    lake: Path, challenge_id: str, when: Callable[[datetime], datetime]
) -> Event:
    """A new challenge (dated ``when(verified)``) in the transaction of the first
    successful verification, with a time to complete, of the lake's third day."""
    con = connect(lake)
    tenant, subject, correlation, factor, verified = con.execute(
        "SELECT tenant, subject, correlationid, factor, time FROM verifications "
        "WHERE success AND time_to_complete_ms IS NOT NULL AND date = $day ORDER BY id LIMIT 1",
        {"day": D0.date() + timedelta(days=2)},
    ).fetchone()  # type: ignore[misc]
    con.close()
    return new_event(
        p.ChallengeIssued(factor=Factor(factor), challenge_id=challenge_id, application="app-0"),
        source="https://login.example.com/mfa",
        tenant=tenant,
        subject=subject,
        correlationid=correlation,
        now=when(verified),
    )

"""The account-lifecycle queries on a small hand-made lake (answers worked out in the
docstrings below), as written and compacted; and the ``lifecycle`` table's columns."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics import queries as q
from analytics.compaction import compact
from analytics.erasure import redact_subject
from analytics.lake import LakeWriter
from analytics.views import connect, fetch
from schemas import Event
from schemas import payloads as p
from schemas.fields import Factor, PolicyTier
from tests.unit.analytics.golden import at, ev
from tests.unit.analytics.test_queries_golden import rows

D1, D2 = "2026-11-02", "2026-11-03"
DAY1, DAY2 = pd.Timestamp(D1), pd.Timestamp(D2)
ALL = q.Filters()
NOV_4 = q.Filters(until=at("2026-11-04", "00:00:00"))


def requested(rid: str, by: str, action: str, ticket: str, deadline: datetime) -> p.Payload:
    return p.AdminOverrideRequested(
        request_id=rid,
        requested_by=by,
        action=action,
        justification="locked out at the airport",
        ticket=ticket,
        approve_before=deadline,
        policy_tier=PolicyTier.BUSINESS,
    )


def approved(rid: str, by: str, action: str, requester: str, ticket: str) -> p.Payload:
    return p.AdminOverrideApproved(
        request_id=rid, approved_by=by, action=action, requested_by=requester, ticket=ticket
    )


def refused(rid: str, by: str, stage: str, reason: str, action: str = "unlock") -> p.Payload:
    return p.AdminOverrideRefused(
        attempted_by=by,
        stage=stage,
        reason=reason,
        request_id=rid,
        action=action,
        requested_by="ann" if stage == "approve" else by,
        justification="please",
    )


def overrides() -> list[Event]:
    """acme, subject carol: r1 (unlock, T-1) requested by ann D1 10:00, ann's own approval
    refused (self_approval) at 10:05, ben approves at 10:10. r2 (temporary access, T-2)
    requested by ann D1 12:00 with a deadline of 13:00, ben's approval at 13:30 refused
    (request_expired): expired. r3: mallory's request refused at once (not_admin), D2 09:00.
    r4 (unlock) requested by ben D2 10:00, deadline 11:00: pending at 10:30, expired after.
    r5 (temporary access) requested by ann D2 08:00, approved by ben 08:05, code g1 granted
    (single use), used at 08:20, refused at 08:30 (used_code). globex: r6 requested by gil
    D2 09:00, approved by hal 09:01."""
    deadline = timedelta(hours=1)
    r1, r2, r5 = at(D1, "10:00:00"), at(D1, "12:00:00"), at(D2, "08:00:00")
    r4 = at(D2, "10:00:00")
    acme = [
        (requested("r1", "ann", "unlock", "T-1", r1 + deadline), r1),
        (refused("r1", "ann", "approve", "self_approval"), at(D1, "10:05:00")),
        (approved("r1", "ben", "unlock", "ann", "T-1"), at(D1, "10:10:00")),
        (requested("r2", "ann", "temporary_access", "T-2", r2 + deadline), r2),
        (
            refused("r2", "ben", "approve", "request_expired", "temporary_access"),
            at(D1, "13:30:00"),
        ),
        (refused("r3", "mallory", "request", "not_admin"), at(D2, "09:00:00")),
        (requested("r4", "ben", "unlock", "T-4", r4 + deadline), r4),
        (requested("r5", "ann", "temporary_access", "T-5", r5 + deadline), r5),
        (approved("r5", "ben", "temporary_access", "ann", "T-5"), at(D2, "08:05:00")),
        (
            p.TemporaryAccessGranted(
                grant_id="g1",
                granted_by="ben",
                expires_at=at(D2, "12:05:00"),
                justification="locked out",
                request_id="r5",
                single_use=True,
                requested_by="ann",
                ticket="T-5",
            ),
            at(D2, "08:05:00"),
        ),
        (
            p.TemporaryAccessUsed(grant_id="g1", single_use=True, uses=1, request_id="r5"),
            at(D2, "08:20:00"),
        ),
        (p.TemporaryAccessRefused(reason="used_code", grant_id="g1"), at(D2, "08:30:00")),
    ]
    out = [ev(payload, "carol", when, f"o{i}") for i, (payload, when) in enumerate(acme)]
    r6 = at(D2, "09:00:00")
    out.append(
        ev(requested("r6", "gil", "unlock", "G-6", r6 + deadline), "ivy", r6, "g6", "globex")
    )
    out.append(
        ev(approved("r6", "hal", "unlock", "gil", "G-6"), "ivy", at(D2, "09:01:00"), "g6", "globex")
    )
    return out


def trusted(trust_id: str, expires: datetime) -> p.Payload:
    return p.DeviceTrusted(trust_id=trust_id, expires_at=expires, device_name="Work laptop")


def devices() -> list[Event]:
    """acme on D1: dave trusts t1 (until Dec 2) and t2 (until Nov 9), erin t3, frank t4,
    gwen t5 (until Dec 2). On D2: erin revokes t3 herself; frank's token is presented from
    another device (refused wrong_device, t4 revoked); gwen is erased (one revocation, every
    device, no trust id); an unknown token is refused. globex: hank trusts t6 on D2.
    As of Nov 4, acme: 5 trusted, 3 revoked, 2 active (dave's); as of Nov 20 t2 expired."""
    dec2, nov9 = at("2026-12-02", "09:00:00"), at("2026-11-09", "09:00:00")
    steps: list[tuple[p.Payload, str, datetime, str]] = [
        (trusted("t1", dec2), "dave", at(D1, "09:00:00"), "acme"),
        (trusted("t2", nov9), "dave", at(D1, "09:30:00"), "acme"),
        (trusted("t3", dec2), "erin", at(D1, "10:00:00"), "acme"),
        (trusted("t4", dec2), "frank", at(D1, "11:00:00"), "acme"),
        (trusted("t5", dec2), "gwen", at(D1, "12:00:00"), "acme"),
        (
            p.DeviceRevoked(reason="subject_request", trust_id="t3", revoked_by="client:app"),
            "erin",
            at(D2, "08:00:00"),
            "acme",
        ),
        (
            p.DeviceTrustRefused(reason="wrong_device", trust_id="t4"),
            "frank",
            at(D2, "09:00:00"),
            "acme",
        ),
        (
            p.DeviceRevoked(reason="presented_from_other_device", trust_id="t4"),
            "frank",
            at(D2, "09:00:00"),
            "acme",
        ),
        (
            p.DeviceRevoked(reason="subject_erased", revoked_by="dpo", devices_revoked=1),
            "gwen",
            at(D2, "12:00:00"),
            "acme",
        ),
        (p.DeviceTrustRefused(reason="unknown_token"), "zed", at(D2, "13:00:00"), "acme"),
        (trusted("t6", dec2), "hank", at(D2, "10:00:00"), "globex"),
    ]
    return [
        ev(payload, subject, when, f"d{i}", tenant)
        for i, (payload, subject, when, tenant) in enumerate(steps)
    ]


def migration() -> list[Event]:
    """acme on D1: three TOTP seeds imported from otpauth URIs (s1-s3), one from a CSV (s4);
    i1, i2, i3 invited to enrol TOTP at 12:00. i2 had enrolled at 11:00 (before: not counted),
    i1 enrols on D2, i3 does not. globex: j1 invited to WebAuthn on D2, not enrolled."""
    out = []
    for i, source in enumerate(("otpauth", "otpauth", "otpauth", "csv"), start=1):
        seed = p.EnrollmentCompleted(
            factor=Factor.TOTP, enrollment_id=f"s{i}", imported_from=source
        )
        out.append(ev(seed, f"s{i}", at(D1, f"09:00:0{i}"), f"m{i}"))
    for name in ("i1", "i2", "i3"):
        invite = p.EnrollmentStarted(factor=Factor.TOTP, enrollment_id=f"inv-{name}", invited=True)
        out.append(ev(invite, name, at(D1, "12:00:00"), f"inv-{name}"))
    for name, when in (("i2", at(D1, "11:00:00")), ("i1", at(D2, "09:00:00"))):
        done = p.EnrollmentCompleted(factor=Factor.TOTP, enrollment_id=f"e-{name}")
        out.append(ev(done, name, when, f"e-{name}"))
    invite = p.EnrollmentStarted(factor=Factor.WEBAUTHN, enrollment_id="inv-j1", invited=True)
    out.append(ev(invite, "j1", at(D2, "10:00:00"), "inv-j1", "globex"))
    return out


@pytest.fixture(scope="module", params=["as-written", "compacted"])
def con(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    lake = tmp_path_factory.mktemp("lifecycle") / "lake"
    writer = LakeWriter(lake)
    batch = overrides() + devices() + migration()
    for start in range(0, len(batch), 9):
        writer.write_events(batch[start : start + 9])
    if request.param == "compacted":
        assert compact(lake, min_files=2)
    connection = connect(lake)
    yield connection
    connection.close()


def test_lifecycle_steps_per_day_by_reason(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.lifecycle_over_time(con, ALL)) == [
        (DAY1, "override", "approved", None, 1, 1),
        (DAY1, "override", "refused", "request_expired", 1, 1),
        (DAY1, "override", "refused", "self_approval", 1, 1),
        (DAY1, "override", "requested", None, 2, 2),
        (DAY1, "trusted_device", "trusted", None, 5, 5),
        (DAY2, "override", "approved", None, 2, 2),
        (DAY2, "override", "refused", "not_admin", 1, 1),
        (DAY2, "override", "requested", None, 3, 3),
        (DAY2, "temporary_access", "granted", None, 1, 1),
        (DAY2, "temporary_access", "refused", "used_code", 1, 1),
        (DAY2, "temporary_access", "used", None, 1, 1),
        (DAY2, "trusted_device", "revoked", "presented_from_other_device", 1, 1),
        (DAY2, "trusted_device", "revoked", "subject_erased", 1, 1),
        (DAY2, "trusted_device", "revoked", "subject_request", 1, 1),
        (DAY2, "trusted_device", "trust_refused", "unknown_token", 1, 1),
        (DAY2, "trusted_device", "trust_refused", "wrong_device", 1, 1),
        (DAY2, "trusted_device", "trusted", None, 1, 1),
    ]
    globex_d2 = q.Filters(tenant="globex", since=at(D2, "00:00:00"))
    assert rows(q.lifecycle_over_time(con, globex_d2)) == [
        (DAY2, "override", "approved", None, 1, 1),
        (DAY2, "override", "requested", None, 1, 1),
        (DAY2, "trusted_device", "trusted", None, 1, 1),
    ]


def test_override_requests_show_both_admins_the_ticket_and_the_outcome(
    con: duckdb.DuckDBPyConnection,
) -> None:
    frame = q.override_requests(con, q.Filters(tenant="acme"))
    assert rows(frame.drop(columns=["requested_at", "approved_at"])) == [
        ("acme", "carol", "r4", "unlock", "ben", None, "T-4", "expired", 0, None),
        ("acme", "carol", "r3", "unlock", "mallory", None, None, "refused", 1, "not_admin"),
        ("acme", "carol", "r5", "temporary_access", "ann", "ben", "T-5", "approved", 0, None),
        (
            "acme",
            "carol",
            "r2",
            "temporary_access",
            "ann",
            None,
            "T-2",
            "expired",
            1,
            "request_expired",
        ),
        ("acme", "carol", "r1", "unlock", "ann", "ben", "T-1", "approved", 1, "self_approval"),
    ]
    assert list(frame["approved_at"].astype(object).where(frame["approved_at"].notna(), None)) == [
        None,
        None,
        pd.Timestamp(at(D2, "08:05:00")),
        None,
        pd.Timestamp(at(D1, "10:10:00")),
    ]
    # as of D2 10:30, r4 still waits for its second administrator; since D2: r1, r2 left out
    mid = q.Filters(tenant="acme", since=at(D2, "00:00:00"), until=at(D2, "10:30:00"))
    assert [
        (r, o)
        for r, o in zip(
            *(q.override_requests(con, mid)[c] for c in ("request_id", "outcome")), strict=True
        )
    ] == [
        ("r4", "pending"),
        ("r3", "refused"),
        ("r5", "approved"),
    ]
    # an approval after the period's end is not known as of then
    before_approval = q.Filters(tenant="acme", until=at(D1, "10:07:00"))
    (r1,) = q.override_requests(con, before_approval).to_dict("records")
    assert (r1["request_id"], r1["outcome"], r1["approved_by"]) == ("r1", "pending", None)
    assert (r1["refusals"], r1["refusal_reasons"]) == (1, "self_approval")


def test_active_trusted_devices_as_of_the_period_end(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.active_trusted_devices(con, NOV_4)) == [
        ("acme", 5, 3, 0, 2, 1),
        ("globex", 1, 0, 0, 1, 1),
    ]
    nov_20 = q.Filters(tenant="acme", until=at("2026-11-20", "00:00:00"))
    assert rows(q.active_trusted_devices(con, nov_20)) == [("acme", 5, 3, 1, 1, 1)]
    # before the revocations of D2, every trust of D1 is in force
    d1_end = q.Filters(tenant="acme", since=at(D2, "00:00:00"), until=at(D2, "00:00:00"))
    assert rows(q.active_trusted_devices(con, d1_end)) == [("acme", 5, 0, 0, 5, 4)]


def test_without_an_end_the_answer_is_as_of_the_callers_clock_never_the_querys(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """No query reads the clock: without ``until`` it answers as of the caller's ``as_of``,
    and without that as of the newest lifecycle event."""
    nov_20 = q.Filters(tenant="acme", as_of=at("2026-11-20", "00:00:00"))
    assert rows(q.active_trusted_devices(con, nov_20)) == [("acme", 5, 3, 1, 1, 1)]
    assert rows(q.active_trusted_devices(con, q.Filters(tenant="acme"))) == rows(
        q.active_trusted_devices(con, q.Filters(tenant="acme", as_of=_newest(con)))
    )


def _newest(con: duckdb.DuckDBPyConnection) -> datetime:
    newest = con.execute("SELECT max(time) FROM lake_lifecycle").fetchone()
    assert newest is not None
    value: datetime = newest[0]
    return value


def test_seeds_imported_by_source_and_invitations(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.migration_over_time(con, ALL)) == [
        (DAY1, "acme", "imported", "csv", "totp", 1),
        (DAY1, "acme", "imported", "otpauth", "totp", 3),
        (DAY1, "acme", "invited", None, "totp", 3),
        (DAY2, "globex", "invited", None, "webauthn", 1),
    ]
    assert rows(q.invitation_conversion(con, ALL)) == [
        ("acme", "totp", 3, 1, 0.3333),
        ("globex", "webauthn", 1, 0, 0.0),
    ]
    # up to D2, i1 has not enrolled yet
    assert rows(
        q.invitation_conversion(con, q.Filters(tenant="acme", until=at(D2, "00:00:00")))
    ) == [("acme", "totp", 3, 0, 0.0)]


def test_the_lifecycle_table_keeps_no_personal_data_and_survives_an_erasure(tmp_path: Path) -> None:
    """A device's name and an override's justification are personal: they are in
    ``events.data`` (which an erasure redacts), never in the ``lifecycle`` table, whose
    rows an erasure leaves as they are (the counts do not change)."""
    lake = tmp_path / "lake"
    LakeWriter(lake).write_events(devices())
    with connect(lake) as connection:
        table = fetch(connection, "SELECT * FROM lifecycle")
        assert "Work laptop" not in set(table.astype(str).to_numpy().ravel())
        before = rows(q.active_trusted_devices(connection, NOV_4))
    assert redact_subject(lake, "acme", "dave")
    with connect(lake) as connection:
        data = fetch(connection, "SELECT data FROM events WHERE subject = 'dave'")["data"]
        assert not any("Work laptop" in text for text in data)
        assert rows(q.active_trusted_devices(connection, NOV_4)) == before


def test_a_lake_made_before_the_lifecycle_table_gains_it_when_opened(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    LakeWriter(lake).write_events(migration())
    shutil.rmtree(lake / "lifecycle")  # as a lake of the previous version has it
    with connect(lake) as connection:
        assert q.active_trusted_devices(connection, ALL).empty
        assert q.lifecycle_over_time(connection, ALL).empty
    LakeWriter(lake).write_events(devices())
    with connect(lake) as connection:
        assert rows(q.active_trusted_devices(connection, NOV_4)) == [
            ("acme", 5, 3, 0, 2, 1),
            ("globex", 1, 0, 0, 1, 1),
        ]

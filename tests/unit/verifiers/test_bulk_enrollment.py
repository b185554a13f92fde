"""Bulk enrollment on a real SQLite store: imported seeds verify through the TOTP verifier,
a re-run adds nothing, a different secret never replaces a factor, secrets stay sealed,
invitations are recorded once."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from schemas import decode
from schemas.fields import Factor
from tests.unit.verifiers.conftest import NOW, raw_dump
from verifiers import totp
from verifiers.bulk_enrollment import Batches, BulkResult, import_seeds, invite
from verifiers.bulk_files import Invitee
from verifiers.factors import list_factors
from verifiers.seed_files import TotpSeed
from verifiers.store import Request, VerifierStore
from verifiers.tables import enrollments, outbox_events

RequestAt = Callable[..., Request]


def _seed(row: int, subject: str, key: bytes, **settings: object) -> TotpSeed:
    return TotpSeed(row, subject, key, **settings)  # type: ignore[arg-type]


def _import(store: VerifierStore, seeds: list[TotpSeed], **options: object) -> BulkResult:
    defaults: dict[str, object] = {
        "tenant": "acme",
        "now": NOW,
        "correlationid": "enroll-import-1",
        "imported_from": "otpauth",
        "batches": Batches(rows=2),
    }
    return import_seeds(store, seeds, **{**defaults, **options})  # type: ignore[arg-type]


def _events(store: VerifierStore) -> list[object]:
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        return [decode(value) for value in values]


def _code(key: bytes, at_offset: timedelta, **settings: object) -> str:
    generator = pyotp.TOTP(
        base64.b32encode(key).decode(),
        digits=int(settings.get("digits", 6)),  # type: ignore[call-overload]
        interval=int(settings.get("period", 30)),  # type: ignore[call-overload]
        digest=totp.ALGORITHMS[str(settings.get("algorithm", "SHA1"))],
    )
    return generator.at(NOW + at_offset)


def test_imported_seeds_verify_and_are_recorded_as_imported(
    store: VerifierStore, request_at: RequestAt
) -> None:
    keys = [bytes([n]) * 20 for n in range(1, 6)]
    settings = [
        {},
        {"algorithm": "SHA256", "digits": 8},
        {"algorithm": "SHA512", "period": 60},
        {},
        {},
    ]
    seeds = [
        _seed(n, f"u-{n}", key, **s) for n, (key, s) in enumerate(zip(keys, settings, strict=True))
    ]
    seen: list[int] = []

    result = _import(store, seeds, batches=Batches(2, lambda batch: seen.append(batch.rows)))

    assert (result.added, result.already_present, result.rejected) == (5, 0, [])
    assert seen == [2, 2, 1]  # committed batch by batch
    for seed, s in zip(seeds, settings, strict=True):
        later = timedelta(minutes=3)
        verdict = totp.verify(
            store,
            request_at(NOW + later, subject=seed.subject),
            code=_code(seed.secret, later, **s),
        )
        assert verdict.accepted, (seed.subject, verdict.reason)
    completed = [e for e in _events(store) if e.type == "mfa.enrollment.completed"]  # type: ignore[attr-defined]
    assert len(completed) == 5
    first = completed[0]
    assert (first.subject, first.tenant, first.correlationid) == ("u-0", "acme", "enroll-import-1")  # type: ignore[attr-defined]
    assert first.data.imported_from == "otpauth"  # type: ignore[attr-defined]
    assert first.data.factor is Factor.TOTP  # type: ignore[attr-defined]
    factors = list_factors(store, tenant="acme", subject="u-1").factors
    assert [(f.factor, f.status, f.confirmed_at) for f in factors] == [(Factor.TOTP, "active", NOW)]


def test_a_rerun_imports_nothing_twice_and_another_secret_is_refused(
    store: VerifierStore, request_at: RequestAt
) -> None:
    seeds = [_seed(1, "u-1", b"\x01" * 20), _seed(2, "u-2", b"\x02" * 20)]
    _import(store, seeds)
    events = len(_events(store))

    again = _import(store, seeds)
    changed = _import(store, [_seed(7, "u-1", b"\x09" * 20)])

    assert (again.added, again.already_present, again.rejected) == (0, 2, [])
    assert (changed.added, changed.already_present) == (0, 0)
    assert [(r.row, r.reason) for r in changed.rejected] == [(7, "enrolled_with_another_secret")]
    assert len(_events(store)) == events
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(enrollments)).scalar() == 2
    # the factor in use is untouched: the old seed still verifies, the new one does not
    later = timedelta(minutes=1)
    refused = totp.verify(
        store, request_at(NOW + later, subject="u-1"), code=_code(b"\x09" * 20, later)
    )
    assert not refused.accepted
    accepted = totp.verify(
        store, request_at(NOW + later, subject="u-1"), code=_code(b"\x01" * 20, later)
    )
    assert accepted.accepted


def test_a_run_asked_to_stop_stops_between_batches_and_a_rerun_finishes(
    store: VerifierStore,
) -> None:
    seeds = [_seed(n, f"u-{n}", bytes([n + 1]) * 20) for n in range(5)]
    committed: list[int] = []
    stop_after_first = Batches(
        2, lambda batch: committed.append(batch.added), lambda: bool(committed)
    )

    stopped = _import(store, seeds, batches=stop_after_first)
    rest = _import(store, seeds)

    assert (stopped.stopped, stopped.added, committed) == (True, 2, [2])
    assert (rest.stopped, rest.added, rest.already_present) == (False, 3, 2)


def test_a_subject_of_another_tenant_is_imported_apart(store: VerifierStore) -> None:
    _import(store, [_seed(1, "u-1", b"\x01" * 20)])
    other = _import(store, [_seed(1, "u-1", b"\x02" * 20)], tenant="globex")
    assert (other.added, other.rejected) == (1, [])


def test_imported_secrets_are_sealed_at_rest(store: VerifierStore) -> None:
    key = bytes(range(100, 120))
    _import(store, [_seed(1, "u-1", key)])
    raw = raw_dump(store)
    assert base64.b32encode(key).rstrip(b"=") not in raw and key not in raw


def test_an_invitation_is_recorded_once_and_skips_who_already_has_the_factor(
    store: VerifierStore,
) -> None:
    _import(store, [_seed(1, "u-1", b"\x01" * 20)])  # u-1 has TOTP already
    invitees = [Invitee(2, "u-1"), Invitee(3, "u-2"), Invitee(4, "u-3")]

    first = invite(
        store, invitees, tenant="acme", factor=Factor.TOTP, now=NOW, correlationid="inv-1"
    )
    again = invite(
        store, invitees, tenant="acme", factor=Factor.TOTP, now=NOW, correlationid="inv-2"
    )
    other_factor = invite(
        store, invitees[:1], tenant="acme", factor=Factor.WEBAUTHN, now=NOW, correlationid="i3"
    )

    assert (first.added, first.already_present) == (2, 1)
    assert (again.added, again.already_present) == (0, 3)
    assert other_factor.added == 1
    started = [e for e in _events(store) if e.type == "mfa.enrollment.started"]  # type: ignore[attr-defined]
    assert [(e.subject, e.data.factor, e.data.invited) for e in started] == [  # type: ignore[attr-defined]
        ("u-2", Factor.TOTP, True),
        ("u-3", Factor.TOTP, True),
        ("u-1", Factor.WEBAUTHN, True),
    ]
    factors = list_factors(store, tenant="acme", subject="u-2").factors
    assert [(f.factor, f.status) for f in factors] == [(Factor.TOTP, "invited")]


def test_an_invitation_taken_up_is_no_longer_listed(store: VerifierStore) -> None:
    invite(
        store, [Invitee(1, "u-4")], tenant="acme", factor=Factor.TOTP, now=NOW, correlationid="i"
    )
    _import(store, [_seed(1, "u-4", b"\x04" * 20)])
    factors = list_factors(store, tenant="acme", subject="u-4").factors
    assert [(f.factor, f.status) for f in factors] == [(Factor.TOTP, "active")]


def test_an_invited_subject_verifies_nothing_until_enrolled(
    store: VerifierStore, request_at: RequestAt
) -> None:
    invite(
        store, [Invitee(1, "u-9")], tenant="acme", factor=Factor.TOTP, now=NOW, correlationid="i"
    )
    verdict = totp.verify(store, request_at(subject="u-9"), code="123456")
    assert (verdict.accepted, verdict.reason) == (False, "not_enrolled")


def test_a_subject_written_as_sql_is_stored_as_the_text_it_is(store: VerifierStore) -> None:
    hostile = "x');DROP/**/TABLE/**/enrollments;--"  # printable, no spaces: a legal subject
    result = _import(store, [_seed(1, hostile, b"\x05" * 20), _seed(2, "u-2", b"\x06" * 20)])
    assert result.added == 2
    with store.engine.connect() as connection:
        subjects = connection.execute(sa.select(enrollments.c.subject)).scalars().all()
    assert sorted(subjects) == sorted([hostile, "u-2"])
    again = _import(store, [_seed(1, hostile, b"\x05" * 20)])
    assert (again.added, again.already_present) == (0, 1)


def test_a_tenant_no_event_may_carry_is_refused_before_anything_is_written(
    store: VerifierStore,
) -> None:
    with pytest.raises(ValueError, match="tenant"):
        _import(store, [_seed(1, "u-1", b"\x01" * 20)], tenant="acme corp")
    with pytest.raises(ValueError, match="tenant"):
        invite(store, [Invitee(1, "u-1")], tenant="", factor=Factor.SMS, now=NOW, correlationid="i")
    assert _events(store) == []

"""TOTP against RFC 6238's vectors and oathtool; replay guard; junk; secrets at rest."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa

from schemas import decode
from tests.support import oathtool_code
from tests.unit.verifiers.conftest import raw_dump
from verifiers import totp
from verifiers.store import Request, VerifierStore
from verifiers.tables import lockout_states, outbox_events

RFC_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 Appendix B: (Unix time, SHA1, SHA256, SHA512), 8 digits, 30 s steps
RFC_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]

RequestAt = Callable[..., Request]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


def _events(store: VerifierStore) -> list[tuple[str, str | None]]:
    with store.engine.connect() as connection:
        values = connection.execute(
            sa.select(outbox_events.c.value).order_by(outbox_events.c.seq)
        ).scalars()
        events = [decode(value) for value in values]
    return [(e.type, getattr(e.data, "reason", None)) for e in events]


def _enrolled(
    store: VerifierStore,
    request_at: RequestAt,
    *,
    secret: str | None = None,
    now: datetime,
    **options: object,
) -> tuple[str, str]:
    """Enroll and confirm; returns (enrollment id, base32 secret)."""
    enrollment = totp.begin_enrollment(
        store,
        request_at(now),
        account_name="ada@example.com",
        issuer="Acme",
        secret=secret,
        **options,
    )  # type: ignore[arg-type]
    secret = secret or pyotp.parse_uri(enrollment.provisioning_uri).secret
    parsed = pyotp.parse_uri(enrollment.provisioning_uri)
    code = parsed.at(now)
    verdict = totp.confirm_enrollment(
        store, request_at(now), enrollment_id=enrollment.enrollment_id, code=code
    )
    assert verdict.accepted, verdict
    return enrollment.enrollment_id, secret


@pytest.mark.parametrize("algorithm", sorted(RFC_SEEDS))
def test_rfc_6238_appendix_b_vectors(
    store: VerifierStore, request_at: RequestAt, algorithm: str
) -> None:
    column = sorted(RFC_SEEDS).index(algorithm) + 1
    first, *rest = RFC_VECTORS
    enrollment = totp.begin_enrollment(
        store,
        request_at(_at(first[0])),
        account_name="rfc",
        issuer="RFC 6238",
        secret=_b32(RFC_SEEDS[algorithm]),
        algorithm=algorithm,
        digits=8,
    )
    assert totp.confirm_enrollment(
        store, request_at(_at(first[0])), enrollment_id=enrollment.enrollment_id, code=first[column]
    ).accepted
    for vector in rest:
        verdict = totp.verify(store, request_at(_at(vector[0])), code=vector[column])
        assert verdict.accepted, (vector, verdict)


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
@pytest.mark.parametrize("digits", [6, 8])
def test_codes_from_oathtool_verify(
    store: VerifierStore, request_at: RequestAt, algorithm: str, digits: int
) -> None:
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    _, secret = _enrolled(store, request_at, now=start, algorithm=algorithm, digits=digits)
    for minutes in (1, 7, 60 * 24):
        moment = start + timedelta(minutes=minutes)
        code = oathtool_code(secret, algorithm=algorithm, digits=digits, at=moment)
        assert len(code) == digits
        assert totp.verify(store, request_at(moment), code=code).accepted


def test_a_time_step_is_accepted_once(store: VerifierStore, request_at: RequestAt) -> None:
    now = datetime(2026, 11, 27, 9, 0, 10, tzinfo=UTC)
    _, secret = _enrolled(store, request_at, now=now - timedelta(minutes=5))
    code = pyotp.TOTP(secret).at(now)
    assert totp.verify(store, request_at(now), code=code).accepted
    again = totp.verify(store, request_at(now + timedelta(seconds=5)), code=code)
    assert (again.accepted, again.reason) == (False, "replayed")
    earlier = pyotp.TOTP(secret).at(now - timedelta(seconds=30))  # still in the ±1 window
    assert totp.verify(store, request_at(now), code=earlier).reason == "replayed"
    assert _events(store)[-3:] == [
        ("mfa.verification.succeeded", None),
        ("mfa.verification.failed", "replayed"),
        ("mfa.verification.failed", "replayed"),
    ]


def test_window_is_one_step_either_side(store: VerifierStore, request_at: RequestAt) -> None:
    now = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
    _, secret = _enrolled(store, request_at, now=now - timedelta(hours=1))
    generator = pyotp.TOTP(secret)
    assert (
        totp.verify(store, request_at(now), code=generator.at(now - timedelta(seconds=61))).reason
        == "invalid_code"
    )
    assert totp.verify(
        store, request_at(now), code=generator.at(now + timedelta(seconds=30))
    ).accepted


@pytest.mark.parametrize(
    "junk", ["", "12345", "1234567", "abcdef", "12 456", "１２３４５６", "123456\n", "9" * 10_000]
)
def test_junk_codes_are_refused_with_a_reason(
    store: VerifierStore, request_at: RequestAt, junk: str
) -> None:
    _enrolled(store, request_at, now=datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    verdict = totp.verify(store, request_at(), code=junk)
    assert (verdict.accepted, verdict.reason) == (False, "malformed_code")


def test_unknown_subject_and_unconfirmed_enrollment(
    store: VerifierStore, request_at: RequestAt
) -> None:
    assert totp.verify(store, request_at(subject="nobody"), code="123456").reason == "not_enrolled"
    pending = totp.begin_enrollment(store, request_at(), account_name="a", issuer="b")
    code = pyotp.parse_uri(pending.provisioning_uri).at(request_at().now)
    assert totp.verify(store, request_at(), code=code).reason == "not_enrolled"
    wrong = totp.confirm_enrollment(store, request_at(), enrollment_id="totp-nope", code=code)
    assert wrong.reason == "unknown_enrollment"


def test_enrollment_offers_an_otpauth_uri_and_a_qr_code(
    store: VerifierStore, request_at: RequestAt
) -> None:
    enrollment = totp.begin_enrollment(
        store,
        request_at(),
        account_name="ada@example.com",
        issuer="Acme Corp",
        algorithm="SHA256",
        digits=8,
    )
    parsed = pyotp.parse_uri(enrollment.provisioning_uri)
    assert enrollment.provisioning_uri.startswith("otpauth://totp/Acme%20Corp:ada%40example.com")
    assert (parsed.digits, parsed.issuer) == (8, "Acme Corp")
    assert len(base64.b32decode(parsed.secret + "=" * (-len(parsed.secret) % 8))) == 20
    assert enrollment.qr_svg.startswith("<svg") and "path" in enrollment.qr_svg
    with pytest.raises(totp.TotpSettingsError):
        totp.begin_enrollment(store, request_at(), account_name="a", issuer="b", digits=7)
    with pytest.raises(totp.TotpSettingsError):
        totp.begin_enrollment(store, request_at(), account_name="a", issuer="b", secret="AAAA")


def test_the_database_holds_no_secret_in_clear(store: VerifierStore, request_at: RequestAt) -> None:
    _, secret = _enrolled(store, request_at, now=request_at().now)
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    dump = raw_dump(store)
    for form in (
        secret.encode(),
        secret.lower().encode(),
        raw,
        raw.hex().encode(),
        base64.b64encode(raw),
    ):
        assert form not in dump


def test_an_unknown_subject_is_refused_without_a_trace_when_asked(
    store: VerifierStore, request_at: RequestAt
) -> None:
    now = _at(1_800_000_000)
    _enrolled(store, request_at, now=now)  # u-1001 in acme
    before = _events(store)

    unknown = totp.verify(
        store, request_at(now, subject="nobody"), code="123456", refuse_unknown_subject=True
    )
    other_tenant = totp.verify(
        store, request_at(now, tenant="globex"), code="123456", refuse_unknown_subject=True
    )
    plain = totp.verify(store, request_at(now, subject="nobody-2"), code="123456")

    assert unknown.reason == other_tenant.reason == "unknown_subject"
    assert unknown.event is None and other_tenant.event is None
    # without the flag the library records the attempt, as it always has
    assert plain.reason == "not_enrolled"
    assert _events(store)[len(before) :] == [("mfa.verification.failed", "not_enrolled")]
    with store.engine.connect() as connection:
        keys = connection.execute(sa.select(lockout_states.c.tenant, lockout_states.c.subject))
        assert {tuple(k) for k in keys} == {("acme", "u-1001"), ("acme", "nobody-2")}


def test_failures_still_lock_when_successes_leave_the_state_unwritten(
    store: VerifierStore, request_at: RequestAt
) -> None:
    now = _at(1_800_000_000)
    _, secret = _enrolled(store, request_at, now=now)
    generator = pyotp.TOTP(secret)
    for offset in range(1, 4):  # successes from a fresh state change nothing
        moment = now + timedelta(seconds=30 * offset)
        verdict = totp.verify(
            store, request_at(moment), code=generator.at(moment), refuse_unknown_subject=True
        )
        assert verdict.accepted
    wrong = now + timedelta(seconds=120)
    refusals = [
        totp.verify(store, request_at(wrong), code="000000", refuse_unknown_subject=True)
        for _ in range(12)
    ]
    assert refusals[0].reason == "invalid_code"
    assert refusals[-1].reason == "locked_out"

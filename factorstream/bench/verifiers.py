"""``bench verifiers``: ceremonies with their store writes against the bare libraries.

* TOTP: ``totp.verify`` (lockout gate, replay guard, outbox event, one transaction) on
  SQLite and on PostgreSQL, against ``pyotp.TOTP.verify`` of the same codes.
* WebAuthn: ``begin_authentication`` + ``finish_authentication`` (challenge stored and
  consumed, lockout gate, sign counter, outbox event) on SQLite, against
  ``webauthn.verify_authentication_response`` of equivalent assertions. Producing each
  assertion (the software authenticator signing) is not timed on either side.
* The durable floor, beside each: the same engine committing one one-row transaction per
  transaction the ceremony needs (one per TOTP verification, two per WebAuthn sign-in:
  the challenge stored, then consumed). No implementation that records each verification
  durably — the replay guard and the lockout counter must survive a crash — can beat it,
  so it shows how close to the bare library a durable verifier can get on this machine.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import sqlalchemy as sa
import webauthn as pywebauthn
from webauthn.helpers import options_to_json
from webauthn.helpers.structs import PublicKeyCredentialDescriptor

from factorstream.bench import BenchResult, Measurement
from factorstream.localpostgres import local_postgres
from factorstream.softauthn import SoftAuthenticator
from schemas.fields import PolicyTier
from verifiers import totp, webauthn
from verifiers.crypto import SecretBox, new_key
from verifiers.publish import metadata
from verifiers.store import Request, VerifierStore, store_engine

T0 = datetime(2026, 11, 27, tzinfo=UTC)
ORIGIN, RP_ID = "https://login.example.com", "login.example.com"


def run(*, quick: bool, postgres_url: str | None = None) -> list[BenchResult]:
    count = 100 if quick else 1_000
    results = []
    with tempfile.TemporaryDirectory(prefix="factorstream-bench-") as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'verifiers.db'}"
        with _postgres(postgres_url) as pg_url:
            for backend, url in (("SQLite", sqlite_url), ("PostgreSQL", pg_url)):
                results.append(_totp(url, backend, count))
        results.append(_webauthn(sqlite_url, count))
    return results


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
    else:
        with local_postgres() as started:
            yield started


def _store(url: str) -> VerifierStore:
    store = VerifierStore(store_engine(url), SecretBox(new_key()), source="https://bench")
    with store.engine.begin() as connection:
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.migrate()
    return store


def _request(moment: datetime, subject: str = "u-bench") -> Request:
    return Request(
        tenant="acme",
        subject=subject,
        correlationid="bench",
        now=moment,
        tier=PolicyTier.CUSTOMER,
        application="bench",
    )


class DurableFloor:
    """One-row transactions, each committed, into a scratch table of its own: what no
    verifier that records each verification durably can beat on the same database.
    :meth:`commit` may be called in several chunks (interleaved with what it is compared
    with); :meth:`close` drops the table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.scratch = sa.Table(
            "bench_durable_floor",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("note", sa.String(64)),
        )
        self.scratch.drop(engine, checkfirst=True)
        self.scratch.create(engine)
        self.insert = self.scratch.insert()
        self.written = 0

    def commit(self, transactions: int) -> float:
        """Commit ``transactions`` one-row transactions; the seconds they took."""
        first, engine, insert = self.written, self.engine, self.insert

        def commit_all() -> None:
            for index in range(first, first + transactions):
                with engine.begin() as connection:
                    connection.execute(insert, {"id": index, "note": "verified"})

        seconds = _timed(commit_all)
        self.written += transactions
        return seconds

    def close(self) -> None:
        self.scratch.drop(self.engine)


def _durable_floor(engine: sa.Engine, count: int, *, commits: int) -> float:
    """Operations/s when each operation is ``commits`` one-row transactions, committed."""
    floor = DurableFloor(engine)
    try:
        return _rate(count, floor.commit(count * commits))
    finally:
        floor.close()


def floor_name(*, commits: int, backend: str) -> str:
    """The durable floor's name in a result, ``commits`` one-row commits an operation."""
    what = "one one-row commit" if commits == 1 else f"{commits} one-row commits"
    return f"durable floor: {what} each ({backend})"


def _floor_measurement(engine: sa.Engine, count: int, *, commits: int, backend: str) -> Measurement:
    rate = _durable_floor(engine, count, commits=commits)
    return Measurement(floor_name(commits=commits, backend=backend), rate, 1, count)


def _rate(count: int, seconds: float) -> float:
    return count / seconds


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _totp(url: str, backend: str, count: int) -> BenchResult:
    store = _store(url)
    enrollment = totp.begin_enrollment(store, _request(T0), account_name="bench", issuer="Acme")
    generator = pyotp.TOTP(pyotp.parse_uri(enrollment.provisioning_uri).secret)
    confirmed = totp.confirm_enrollment(
        store, _request(T0), enrollment_id=enrollment.enrollment_id, code=generator.at(T0)
    )
    if not confirmed.accepted:
        raise AssertionError(f"enrollment refused: {confirmed.reason}")
    moments = [T0 + timedelta(seconds=30 * (i + 1)) for i in range(count)]
    codes = [generator.at(moment) for moment in moments]

    def ours() -> None:
        for moment, code in zip(moments, codes, strict=True):
            if not totp.verify(store, _request(moment), code=code).accepted:
                raise AssertionError("a valid code was refused in the benchmark")

    def bare() -> None:
        for moment, code in zip(moments, codes, strict=True):
            if not generator.verify(code, for_time=moment, valid_window=1):
                raise AssertionError("pyotp refused a valid code")

    ours_s, bare_s = _timed(ours), _timed(bare)
    floor = _floor_measurement(store.engine, count, commits=1, backend=backend)
    store.engine.dispose()
    return BenchResult(
        bench=f"verifiers-totp-{backend.lower()}",
        baseline=Measurement("bare pyotp.TOTP.verify (±1 step)", _rate(count, bare_s), 1, count),
        unit="verifications/s",
        contenders=[
            Measurement(
                f"totp.verify with store writes ({backend})", _rate(count, ours_s), 1, count
            ),
            floor,
        ],
        goal_ratio=0.5,
        goal_text="≥ 0.5× bare pyotp",
        notes={
            "per verification": f"{ours_s / count * 1e3:.2f} ms ours, "
            f"{bare_s / count * 1e6:.0f} µs bare"
        },
    )


def _webauthn(url: str, count: int) -> BenchResult:
    bare_s = _bare_webauthn(count)
    store = _store(url)
    authenticator = SoftAuthenticator()
    options = webauthn.begin_registration(
        store,
        _request(T0),
        rp_id=RP_ID,
        rp_name="Acme",
        user_name="bench",
        user_display_name="Bench",
    )
    registered = webauthn.finish_registration(
        store,
        _request(T0),
        challenge_id=options.challenge_id,
        rp_id=RP_ID,
        credential_json=authenticator.create(options.options_json, ORIGIN),
        expected_origin=ORIGIN,
    )
    if not registered.accepted:
        raise AssertionError(f"registration refused: {registered.reason}")
    ours_s = 0.0
    for index in range(count):
        moment = T0 + timedelta(seconds=2 * (index + 1))
        started = time.perf_counter()
        challenge = webauthn.begin_authentication(store, _request(moment), rp_id=RP_ID)
        ours_s += time.perf_counter() - started
        assertion = authenticator.get(challenge.options_json, ORIGIN)
        started = time.perf_counter()
        verdict = webauthn.finish_authentication(
            store,
            _request(moment),
            challenge_id=challenge.challenge_id,
            credential_json=assertion,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
        )
        ours_s += time.perf_counter() - started
        if not verdict.accepted:
            raise AssertionError(f"a valid assertion was refused: {verdict.reason}")
    floor = _floor_measurement(store.engine, count, commits=2, backend="SQLite")
    store.engine.dispose()
    return BenchResult(
        bench="verifiers-webauthn-sqlite",
        baseline=Measurement(
            "bare webauthn.verify_authentication_response", _rate(count, bare_s), 1, count
        ),
        contenders=[
            Measurement(
                "begin + finish_authentication with store writes (SQLite)",
                _rate(count, ours_s),
                1,
                count,
            ),
            floor,
        ],
        unit="assertions/s",
        goal_ratio=0.7,
        goal_text="≥ 0.7× bare py_webauthn",
        notes={
            "per assertion": f"{ours_s / count * 1e3:.2f} ms ours, "
            f"{bare_s / count * 1e3:.2f} ms bare"
        },
    )


def _bare_webauthn(count: int) -> float:
    """Seconds py_webauthn alone takes to verify ``count`` fresh assertions."""
    authenticator = SoftAuthenticator()
    registration = pywebauthn.generate_registration_options(
        rp_id=RP_ID, rp_name="Acme", user_name="bench", user_id=b"bench-user"
    )
    verified = pywebauthn.verify_registration_response(
        credential=authenticator.create(options_to_json(registration), ORIGIN),
        expected_challenge=registration.challenge,
        expected_origin=ORIGIN,
        expected_rp_id=RP_ID,
    )
    allow = [PublicKeyCredentialDescriptor(id=verified.credential_id)]
    assertions: list[tuple[bytes, str]] = []
    for _ in range(count):
        options = pywebauthn.generate_authentication_options(rp_id=RP_ID, allow_credentials=allow)
        assertions.append((options.challenge, authenticator.get(options_to_json(options), ORIGIN)))
    sign_count = verified.sign_count

    def verify_all() -> None:
        nonlocal sign_count
        for challenge, assertion in assertions:
            result: Any = pywebauthn.verify_authentication_response(
                credential=assertion,
                expected_challenge=challenge,
                expected_rp_id=RP_ID,
                expected_origin=ORIGIN,
                credential_public_key=verified.credential_public_key,
                credential_current_sign_count=sign_count,
                require_user_verification=True,
            )
            sign_count = result.new_sign_count

    return _timed(verify_all)

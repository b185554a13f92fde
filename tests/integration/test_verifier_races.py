"""Races on SQLite and a real PostgreSQL server: the replay guard and the lockout gate."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest

from schemas.fields import Channel, Client, Factor, PolicyTier
from verifiers import otp, push, totp
from verifiers.crypto import SecretBox, new_key
from verifiers.delivery import FailoverDelivery, Message
from verifiers.policy import TIERS, tier_policy
from verifiers.publish import metadata
from verifiers.store import Request, VerifierStore, store_engine

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'verifiers.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _store(url: str, **options: Any) -> VerifierStore:
    store = VerifierStore(store_engine(url), SecretBox(new_key()), source="https://test", **options)
    with store.engine.begin() as connection:  # a fresh schema on the shared server
        metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.migrate()
    return store


def _request(
    now: datetime, subject: str = "u-1", tier: PolicyTier = PolicyTier.BUSINESS
) -> Request:
    return Request(
        tenant="acme",
        subject=subject,
        correlationid="race",
        now=now,
        tier=tier,
        application="vpn",
        client=Client(ip="203.0.113.9"),
    )


def _all_at_once(count: int, attempt: Callable[[], T]) -> list[T]:
    barrier = threading.Barrier(count)

    def go() -> T:
        barrier.wait()
        return attempt()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: go(), range(count)))


@pytest.fixture
def enrolled(store_url: str) -> Iterator[tuple[VerifierStore, str]]:
    store = _store(store_url)
    enrollment = totp.begin_enrollment(
        store, _request(START - timedelta(hours=1)), account_name="u-1", issuer="Acme"
    )
    secret = pyotp.parse_uri(enrollment.provisioning_uri).secret
    first = pyotp.TOTP(secret).at(START - timedelta(hours=1))
    assert totp.confirm_enrollment(
        store,
        _request(START - timedelta(hours=1)),
        enrollment_id=enrollment.enrollment_id,
        code=first,
    ).accepted
    yield store, secret
    store.engine.dispose()


def test_fifty_concurrent_submissions_of_one_code_succeed_once(
    enrolled: tuple[VerifierStore, str],
) -> None:
    store, secret = enrolled
    code = pyotp.TOTP(secret).at(START)
    verdicts = _all_at_once(50, lambda: totp.verify(store, _request(START), code=code))
    outcomes = Counter(v.reason for v in verdicts)
    assert outcomes[None] == 1  # exactly one acceptance
    assert sum(outcomes.values()) == 50
    assert set(outcomes) - {None} <= {"replayed", "locked_out"}
    assert outcomes["replayed"] >= 1


def test_two_hundred_concurrent_guesses_are_held_to_the_tier_limit(store_url: str) -> None:
    business = tier_policy(PolicyTier.BUSINESS, quick_login_check=timedelta(0))
    store = _store(store_url, tiers={**TIERS, PolicyTier.BUSINESS: business})
    enrollment = totp.begin_enrollment(
        store, _request(START - timedelta(hours=1)), account_name="u-1", issuer="Acme"
    )
    secret = pyotp.parse_uri(enrollment.provisioning_uri).secret
    generator = pyotp.TOTP(secret)
    assert totp.confirm_enrollment(
        store,
        _request(START - timedelta(hours=1)),
        enrollment_id=enrollment.enrollment_id,
        code=generator.at(START - timedelta(hours=1)),
    ).accepted
    wrong = f"{(int(generator.at(START)) + 1) % 1_000_000:06d}"

    verdicts = _all_at_once(200, lambda: totp.verify(store, _request(START), code=wrong))
    outcomes = Counter(v.reason for v in verdicts)
    # the per-factor OTP counter (3 for business) trips before the subject's (5)
    evaluated = min(business.max_failures, business.otp_max_failures)
    assert outcomes == {"invalid_code": evaluated, "locked_out": 200 - evaluated}

    while_locked = totp.verify(
        store,
        _request(START + timedelta(seconds=30)),
        code=generator.at(START + timedelta(seconds=30)),
    )
    assert (while_locked.accepted, while_locked.reason) == (False, "locked_out")
    assert while_locked.locked_until is not None
    after = while_locked.locked_until + timedelta(seconds=1)
    assert totp.verify(store, _request(after), code=generator.at(after)).accepted
    store.engine.dispose()


class _Phone:
    """A provider that keeps every message it is handed (from any thread)."""

    name = "phone"
    channels = frozenset(Channel)

    def __init__(self) -> None:
        self.received: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> str:
        with self._lock:
            self.received.append(message)
            return f"m-{len(self.received)}"


def test_thirty_concurrent_requests_for_a_code_or_a_push_send_one(store_url: str) -> None:
    """A script fires 30 "send me a code" and 30 "send a push" requests at one instant: the
    subject's lock serialises them, so one of each is sent and the others are refused."""
    store, phone = _store(store_url), _Phone()
    delivery = FailoverDelivery([phone])
    enrolled_at = _request(START - timedelta(hours=2))
    pending = otp.begin_enrollment(
        store, enrolled_at, factor=Factor.SMS, destination="+4915123456789"
    )
    otp.send_code(
        store,
        enrolled_at,
        factor=Factor.SMS,
        delivery=delivery,
        enrollment_id=pending.enrollment_id,
    )
    code = "".join(ch for ch in phone.received[-1].text if ch.isdigit())[:6]
    assert otp.confirm_enrollment(
        store, enrolled_at, enrollment_id=pending.enrollment_id, code=code
    ).accepted
    before = len(phone.received)
    sends = _all_at_once(
        30, lambda: otp.send_code(store, _request(START), factor=Factor.SMS, delivery=delivery)
    )
    assert Counter(s.reason for s in sends) == {None: 1, "resend_cooldown": 29}
    assert len(phone.received) == before + 1

    def prompt() -> str:
        try:
            push.send_push(store, _request(START, subject="u-2"))
        except push.PushRefused as refused:
            return refused.reason
        return "sent"

    assert Counter(_all_at_once(30, prompt)) == {"sent": 1, "push_pending": 29}
    store.engine.dispose()

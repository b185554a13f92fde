"""The sign-in ceremony: password (scrypt) then TOTP through our verifiers, with lockout."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest
import sqlalchemy as sa

from dashboard import users
from dashboard.auth import INVALID, LOCKED, SignIn, account_status, sign_in
from dashboard.users import TENANT, UserDirectory, UserError, hash_password, verify_password
from schemas import Event, decode
from schemas.signing import check_producer
from tests.factories import CONTROL_KEY, TRUSTED
from tests.unit.dashboard.conftest import PASSWORD, Account, AddUser, Clock
from verifiers.publish import outbox_events


def _outbox_events(directory: UserDirectory) -> list[Event]:
    with directory.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_events.c.value).order_by(outbox_events.c.seq))
        decoded = [decode(bytes(row.value)) for row in rows]
    return [e for e in decoded if e.tenant == TENANT]


def _events(directory: UserDirectory) -> list[tuple[str, dict[str, object]]]:
    return [(e.type, msgspec.to_builtins(e.data)) for e in _outbox_events(directory)]


def _attempt(directory: UserDirectory, account: Account, clock: Clock, **overrides: str) -> SignIn:
    values = {"password": PASSWORD, "code": account.code(clock())} | overrides
    return sign_in(directory, name=account.name, now=clock(), **values)


def _fail_three_passwords(directory: UserDirectory, account: Account, clock: Clock) -> None:
    """Three wrong passwords 5 s apart (the admin tier's lockout), then 5 s more."""
    for _ in range(3):
        clock.advance(seconds=5)
        _attempt(directory, account, clock, password="wrong password!")
    clock.advance(seconds=5)


def test_password_hash_is_salted_scrypt_and_checks() -> None:
    first, second = hash_password("s3cret-passphrase"), hash_password("s3cret-passphrase")
    assert first != second  # a fresh salt each time
    assert first.startswith(f"scrypt${users.SCRYPT_N}$8$1$")
    assert verify_password("s3cret-passphrase", first)
    assert not verify_password("s3cret-passphrasE", first)
    assert not verify_password("s3cret-passphrase", "md5$abc")
    assert not verify_password("s3cret-passphrase", "scrypt$garbage")


def test_password_and_current_code_sign_in_and_activate_the_enrollment(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    assert account_status(directory, account.created.user, now=clock()).totp == "pending"
    result = _attempt(directory, account, clock)
    assert result.user is not None and result.user.name == "alice"
    assert account_status(directory, account.created.user, now=clock()).totp == "active"
    clock.advance(seconds=60)
    assert _attempt(directory, account, clock).accepted
    types = [t for t, _ in _events(directory)]
    assert "mfa.enrollment.completed" in types and "mfa.verification.succeeded" in types


def test_wrong_totp_is_refused_and_counts_toward_the_lockout(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    assert _attempt(directory, account, clock).accepted
    for _ in range(3):  # admin tier: 3 failures lock the subject
        clock.advance(seconds=40)
        wrong = account.code(clock(), steps=20)  # a real code, of another time
        result = _attempt(directory, account, clock, code=wrong)
        assert not result.accepted and result.reason == INVALID
        assert result.detail == "invalid_code"
    failures = [d for t, d in _events(directory) if t == "mfa.verification.failed"]
    assert [f["reason"] for f in failures] == ["invalid_code"] * 3
    clock.advance(seconds=40)
    refused = _attempt(directory, account, clock)  # right password and code, but locked
    assert not refused.accepted and refused.reason == LOCKED
    assert refused.locked_until is not None
    assert account_status(directory, account.created.user, now=clock()).lockout.startswith("until")
    clock.advance(minutes=6)  # the first admin lockout lasts 5 minutes
    assert _attempt(directory, account, clock).accepted


def test_wrong_password_is_refused_counted_and_burns_no_code(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    assert _attempt(directory, account, clock).accepted
    clock.advance(seconds=40)
    code = account.code(clock())
    result = _attempt(directory, account, clock, password="not the password", code=code)
    assert not result.accepted and result.detail == "invalid_password"
    failed = [d for t, d in _events(directory) if t == "auth.login.attempted"]
    assert failed[-1]["outcome"] == "failure" and failed[-1]["reason"] == "invalid_password"
    clock.advance(seconds=2)
    assert _attempt(directory, account, clock, code=code).accepted


def test_a_code_is_accepted_once_replay_is_refused(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    code = account.code(clock())
    assert _attempt(directory, account, clock, code=code).accepted
    clock.advance(seconds=5)  # same time step: an eavesdropper replays the code
    replayed = _attempt(directory, account, clock, code=code)
    assert not replayed.accepted and replayed.detail == "replayed"


def test_unknown_or_disabled_users_are_refused_alike(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    ghost = sign_in(directory, name="mallory", password=PASSWORD, code="123456", now=clock())
    assert not ghost.accepted and ghost.reason == INVALID
    directory.disable(account.name, now=clock())
    result = _attempt(directory, account, clock)
    assert not result.accepted and result.reason == INVALID


def test_locked_refusals_are_recorded_but_not_counted(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    _fail_three_passwords(directory, account, clock)
    locked = _attempt(directory, account, clock)
    assert locked.reason == LOCKED
    reasons = [d.get("reason") for t, d in _events(directory) if t == "auth.login.attempted"]
    assert reasons.count("locked_out") == 1
    clock.advance(minutes=5, seconds=1)
    assert _attempt(directory, account, clock).accepted


def test_sessions_end_on_logout_expiry_and_disable(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    now = clock()
    sid = directory.open_session(account.name, now=now, expires_at=now + timedelta(hours=1))
    assert directory.session_user(sid, now=now) is not None
    assert directory.session_user(sid, now=now + timedelta(hours=1)) is None
    directory.end_session(sid, now=now)
    assert directory.session_user(sid, now=now) is None
    other = directory.open_session(account.name, now=now, expires_at=now + timedelta(hours=1))
    directory.disable(account.name, now=now)
    assert directory.session_user(other, now=now) is None


def test_an_administrator_unlocks_a_locked_user_and_it_is_recorded(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    _fail_three_passwords(directory, account, clock)
    assert _attempt(directory, account, clock).reason == LOCKED
    directory.unlock(account.name, now=clock(), approved_by="admin@example.com", signer=CONTROL_KEY)
    clock.advance(seconds=31)  # a fresh code
    assert _attempt(directory, account, clock).accepted
    (override,) = [e for e in _outbox_events(directory) if e.type == "admin.override.approved"]
    assert override.data.action == "unlock" and override.data.approved_by == "admin@example.com"
    check_producer(override, TRUSTED)  # the stream will accept it: signed by a trusted key
    with pytest.raises(UserError, match="no user"):
        directory.unlock(
            "mallory", now=clock(), approved_by="admin@example.com", signer=CONTROL_KEY
        )


def test_wrong_passwords_never_lock_a_user_for_good(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    """The attack: a stranger who knows a user name guesses passwords, each time the lock
    runs out, for over a day (on the admin tier's own policy the 4th lockout, six wrong
    passwords after ~30 minutes, was permanent). The user still signs in afterwards."""
    account = add_user()
    for _ in range(30):
        _fail_three_passwords(directory, account, clock)
        lockout = account_status(directory, account.created.user, now=clock()).lockout
        assert lockout.startswith("until "), lockout  # not "permanent"
        until = datetime.fromisoformat(lockout.removeprefix("until "))
        assert until - clock() <= timedelta(minutes=30)
        clock.now = until + timedelta(seconds=1)
    assert account_status(directory, account.created.user, now=clock()).lockout == "-"
    clock.advance(seconds=31)
    assert _attempt(directory, account, clock).accepted


def test_session_ids_are_kept_hashed(
    directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    """A copy of the users' database (a backup, a stolen file) opens no session."""
    account = add_user()
    now = clock()
    sid = directory.open_session(account.name, now=now, expires_at=now + timedelta(hours=1))
    with directory.engine.connect() as connection:
        stored = connection.execute(sa.select(users.sessions.c.id)).scalars().all()
    assert stored == [users.session_key(sid)] and sid not in stored
    assert directory.session_user(stored[0], now=now) is None  # the stored value is no key
    assert directory.session_user(sid, now=now) is not None

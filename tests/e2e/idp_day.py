"""A day of an Auth0 tenant's logs, in the Management API's record format (``GET
/api/v2/logs``: ``log_id``, ``date``, ``type``, ``user_id``, ``user_name``, ``client_name``,
``ip``, ``user_agent``, ``location_info``, ``strategy``, ``details``), for the end-to-end
test of the adapters. The shapes follow Auth0's log event reference
(https://auth0.com/docs/deploy-monitor/logs/log-event-type-codes) and its sample records;
the people, places and times are made up, deterministically.

What the day holds, and what the pipeline must make of it:

* eight people sign in from Berlin each morning with a password (``s``) and a Guardian OTP
  (``gd_start_auth``, ``gd_auth_succeed``): quiet;
* ``auth0|alice`` signs in from Berlin at 09:00 and from Sydney at 09:40: impossible
  travel;
* ``auth0|bob``'s password is guessed twelve times a minute apart (``fp``): the lockout
  fold locks the subject (customer tier: ten failures);
* ``auth0|carol``'s OTP is guessed six times (``gd_auth_failed`` naming the ``otp``
  authenticator): her TOTP factor is locked (five failures). (OTP guessing does not fire:
  it counts the reasons ``invalid_code`` and ``replayed``, and Auth0 says ``failed``);
* Auth0 blocks ``203.0.113.77`` for ``auth0|dave`` after its own brute-force protection
  (``limit_wc``): an IP block reported by the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

TENANT = "acme"
SOURCE = "https://acme.eu.auth0.com/"
DAY = datetime(2026, 10, 20, tzinfo=UTC)
BERLIN = {"country_code": "DE", "city_name": "Berlin", "latitude": 52.52, "longitude": 13.405}
SYDNEY = {"country_code": "AU", "city_name": "Sydney", "latitude": -33.87, "longitude": 151.21}
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
BLOCKED_IP = "203.0.113.77"
PEOPLE = [f"auth0|p{n:02d}" for n in range(8)]


class _Log:
    def __init__(self) -> None:
        self.serial = 0

    def record(
        self,
        kind: str,
        at: datetime,
        user: str | None,
        *,
        ip: str = "192.0.2.10",
        where: dict[str, Any] = BERLIN,
        **extra: Any,
    ) -> dict[str, Any]:
        self.serial += 1
        record: dict[str, Any] = {
            "log_id": f"9002026102{self.serial:010d}",
            "date": at.isoformat().replace("+00:00", "Z"),
            "type": kind,
            "client_id": "aBcD1234",
            "client_name": "Payroll",
            "ip": ip,
            "user_agent": UA,
            "location_info": where,
            "strategy": "Username-Password-Authentication",
            "strategy_type": "database",
            **extra,
        }
        if user is not None:
            record["user_id"] = user
            record["user_name"] = user.split("|")[1] + "@acme.example"
        return record


def _otp(guardian: str) -> dict[str, Any]:
    return {"details": {"authenticator": {"type": "otp"}, "enrollment": {"_id": guardian}}}


def _sign_in(log: _Log, at: datetime, user: str, **where: Any) -> Iterator[dict[str, Any]]:
    yield log.record("s", at, user, **where)
    yield log.record("gd_start_auth", at + timedelta(seconds=5), user, **where, **_otp("dev_1"))
    yield log.record("gd_auth_succeed", at + timedelta(seconds=20), user, **where, **_otp("dev_1"))


def auth0_day() -> list[dict[str, Any]]:
    """The day's records, oldest first."""
    log, records = _Log(), []
    for index, person in enumerate(PEOPLE):
        records += _sign_in(log, DAY + timedelta(hours=8, minutes=3 * index), person)
    records += _sign_in(log, DAY + timedelta(hours=9), "auth0|alice")
    records += _sign_in(
        log, DAY + timedelta(hours=9, minutes=40), "auth0|alice", ip="198.51.100.40", where=SYDNEY
    )
    for minute in range(12):
        at = DAY + timedelta(hours=10, minutes=minute)
        records.append(log.record("fp", at, "auth0|bob", description="Wrong email or password."))
    for minute in range(6):
        at = DAY + timedelta(hours=11, minutes=minute)
        records.append(log.record("gd_auth_failed", at, "auth0|carol", **_otp("dev_7")))
    records.append(
        log.record(
            "limit_wc",
            DAY + timedelta(hours=12),
            "auth0|dave",
            ip=BLOCKED_IP,
            description="Blocked account: too many failed attempts from this IP",
        )
    )
    return sorted(records, key=lambda record: record["date"])

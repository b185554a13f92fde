"""Per-tenant daily caps per destination country on SMS and voice sends, and their price.

SMS pumping (toll fraud) makes a sign-in form send codes to numbers whose operator pays
the fraudster: the subjects are many and fresh, so a per-subject resend cooldown
(:mod:`verifiers.resend`) does not stop it; a cap on what one tenant may send to one
country in one day does, and it bounds the bill. A cap (:class:`DailyCap`) has a number of
``sends``, a ``spend`` in micros (:mod:`verifiers.pricing`), or both, per tenant, per
destination country, per UTC day (the counters start again at 00:00 UTC).

A send is charged against its cap **before** anything is sent, at the dearest price of the
providers that may deliver it (the failover may end at any of them), so the day's spend
never passes the cap whoever delivers; once delivered, the charge is settled to the price
of the provider that took it. A destination whose country is not known (a non-geographic
number) falls under the ``unknown`` cap: no country code, however written, escapes a cap.
A send the cap refuses is refused with reason ``country_cap`` (no guess: see
``schemas.payloads.NOT_EVALUATED_REASONS``) and may be asked for again at the next UTC
midnight.

The counters are one row per (tenant, day, country) in the verifier database
(``send_counts``); charging locks that row until the send's step commits, so parallel
sends of many subjects cannot all pass a cap that has room for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from schemas.fields import Channel
from verifiers.pricing import (
    Price,
    PriceTable,
    PriceTableError,
    parse_money,
    price_table_from,
    read_document,
)
from verifiers.tables import send_counts

COUNTRY_CAP: Final = "country_cap"
UNKNOWN_COUNTRY: Final = "ZZ"
"""The counter key of destinations whose country is not known (ISO 3166 user-assigned)."""


@dataclass(frozen=True)
class DailyCap:
    """At most ``sends`` sends and ``spend`` micros a day (``None``: no limit)."""

    sends: int | None = None
    spend: int | None = None


@dataclass(frozen=True)
class CountryCaps:
    """The caps of every tenant: per country, else ``default``; ``unknown``: no country."""

    default: DailyCap = DailyCap()
    unknown: DailyCap = DailyCap()
    countries: Mapping[str, DailyCap] = field(default_factory=dict)

    def cap_for(self, country: str | None) -> DailyCap:
        if country is None:
            return self.unknown
        return self.countries.get(country, self.default)


@dataclass(frozen=True)
class DaySpent:
    """What one tenant sent to one country on one UTC day so far."""

    sends: int = 0
    spend: int = 0


@dataclass(frozen=True)
class CapRefused:
    """A send the cap refuses: which limit (``sends`` or ``spend``) and when to ask again."""

    limit: str
    retry_at: datetime
    reason: str = COUNTRY_CAP


def utc_day(now: datetime) -> date:
    """The UTC day ``now`` (timezone-aware) falls on: the counters' key."""
    if now.tzinfo is None:
        raise ValueError("expected a timezone-aware time")
    return now.astimezone(UTC).date()


def next_day(now: datetime) -> datetime:
    """The UTC midnight after ``now``: when a day's caps start again."""
    return datetime.combine(utc_day(now) + timedelta(days=1), time(), UTC)


def refuse_over_cap(
    spent: DaySpent, *, cost: int, cap: DailyCap, now: datetime
) -> CapRefused | None:
    """Whether one more send costing ``cost`` micros at ``now`` passes ``cap`` given the
    day's ``spent`` so far; ``None``: send it. A cap reached exactly is not passed."""
    if cap.sends is not None and spent.sends + 1 > cap.sends:
        return CapRefused("sends", next_day(now))
    if cap.spend is not None and spent.spend + cost > cap.spend:
        return CapRefused("spend", next_day(now))
    return None


@dataclass(frozen=True)
class SendCharges:
    """What the verifier needs to price and cap phone sends: the price table and the caps."""

    prices: PriceTable
    caps: CountryCaps = CountryCaps()

    def estimate(self, channel: Channel, providers: tuple[str, ...], country: str | None) -> Price:
        return self.prices.most(channel, providers, country)


# -- the settings file -------------------------------------------------------------------


def caps_from(document: Mapping[str, Any]) -> CountryCaps:
    """The ``[caps]`` table of a settings document (``docs/sms-cost.md``)."""
    section = document.get("caps", {})
    if not isinstance(section, Mapping):
        raise PriceTableError("[caps]: expected a table")
    unknown = sorted(set(section) - {"default", "unknown", "countries"})
    if unknown:
        raise PriceTableError(
            f"[caps]: unknown keys {unknown}: expected default, unknown, countries"
        )
    countries = section.get("countries", {})
    if not isinstance(countries, Mapping):
        raise PriceTableError("[caps.countries]: expected a table of country = {sends, spend}")
    for code in countries:
        if not (isinstance(code, str) and len(code) == 2 and code.isascii() and code.isupper()):
            raise PriceTableError(
                f"[caps.countries]: expected ISO 3166-1 alpha-2 codes like NG, found {code[:16]!r}"
            )
    return CountryCaps(
        default=_cap(section.get("default", {}), "[caps.default]"),
        unknown=_cap(section.get("unknown", {}), "[caps.unknown]"),
        countries={code: _cap(cap, f"[caps.countries.{code}]") for code, cap in countries.items()},
    )


def _cap(value: object, where: str) -> DailyCap:
    if not isinstance(value, Mapping):
        raise PriceTableError(f'{where}: expected {{ sends = N, spend = "amount" }}')
    extra = sorted(set(value) - {"sends", "spend"})
    if extra:
        raise PriceTableError(f"{where}: unknown keys {extra}: expected sends, spend")
    sends = value.get("sends")
    if sends is not None and (isinstance(sends, bool) or not isinstance(sends, int) or sends < 0):
        raise PriceTableError(f"{where} sends: expected a whole number >= 0, found {sends!r}")
    spend = value.get("spend")
    return DailyCap(sends, None if spend is None else parse_money(spend, f"{where} spend"))


def send_charges_from(document: Mapping[str, Any]) -> SendCharges:
    return SendCharges(price_table_from(document), caps_from(document))


def load_send_charges(path: Path) -> SendCharges:
    """The prices and caps of a ``.toml`` or ``.json`` file (``docs/sms-cost.md``)."""
    return send_charges_from(read_document(path))


# -- the counters (verifier database) ----------------------------------------------------


def _claim(dialect: Any) -> Any:
    insert = dialect.insert(send_counts).values(
        tenant=sa.bindparam("k_tenant"),
        day=sa.bindparam("k_day"),
        country=sa.bindparam("k_country"),
        sends=0,
        spend_micros=0,
    )
    return insert.on_conflict_do_update(
        index_elements=[send_counts.c.tenant, send_counts.c.day, send_counts.c.country],
        set_={"tenant": insert.excluded.tenant},
    ).returning(send_counts.c.sends, send_counts.c.spend_micros)


_CLAIM: Final = {"postgresql": _claim(postgresql), "sqlite": _claim(sqlite)}


def _key(tenant: str, now: datetime, country: str | None) -> dict[str, Any]:
    return {"k_tenant": tenant, "k_day": utc_day(now), "k_country": country or UNKNOWN_COUNTRY}


def charge(
    connection: sa.Connection,
    *,
    tenant: str,
    country: str | None,
    cost: int,
    caps: CountryCaps,
    now: datetime,
) -> CapRefused | None:
    """Charge one send of ``cost`` micros against the tenant's cap for ``country`` today,
    or refuse it. The counter row stays locked until ``connection``'s transaction ends."""
    key = _key(tenant, now, country)
    row = connection.execute(_CLAIM[connection.dialect.name], key).one()
    refused = refuse_over_cap(
        DaySpent(row.sends, row.spend_micros), cost=cost, cap=caps.cap_for(country), now=now
    )
    if refused is None:
        connection.execute(
            send_counts.update()
            .where(*_matches(key))
            .values(sends=send_counts.c.sends + 1, spend_micros=send_counts.c.spend_micros + cost)
        )
    return refused


def settle(
    connection: sa.Connection,
    *,
    tenant: str,
    country: str | None,
    charged: int,
    cost: int,
    at: datetime,
) -> None:
    """Replace a send's ``charged`` estimate by its actual ``cost`` (both micros) on the
    counter of the day it was charged (``at``: when it was charged)."""
    if cost == charged:
        return
    connection.execute(
        send_counts.update()
        .where(*_matches(_key(tenant, at, country)))
        .values(spend_micros=send_counts.c.spend_micros + (cost - charged))
    )


def spent(
    connection: sa.Connection, *, tenant: str, country: str | None, day: datetime
) -> DaySpent:
    """What ``tenant`` sent to ``country`` on ``day``'s UTC day (read only)."""
    row = connection.execute(
        sa.select(send_counts.c.sends, send_counts.c.spend_micros).where(
            *_matches(_key(tenant, day, country))
        )
    ).one_or_none()
    return DaySpent(row.sends, row.spend_micros) if row is not None else DaySpent()


def _matches(key: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        send_counts.c.tenant == key["k_tenant"],
        send_counts.c.day == key["k_day"],
        send_counts.c.country == key["k_country"],
    )

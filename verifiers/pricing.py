"""What an SMS or a voice call costs: a price table per provider and destination country.

Money is integer **micros** (millionths of the currency unit: 0.0075 EUR = 7500). SMS
prices run to four or five decimals; a float cannot hold 0.0075 exactly and sums of many
sends drift, while integers add exactly in Python, in SQL (BIGINT) and in Parquet (int64),
and JSON carries them unchanged in every language up to 2**53 (9 billion units). Prices are
written as decimal *strings* (``"0.0075"``) and parsed with :class:`~decimal.Decimal`; a
float (TOML ``0.0075`` without quotes) is refused because it is already rounded.

The table (format: ``docs/sms-cost.md``) gives, per channel (``sms``, ``voice``) and
provider, a price per ISO country and the provider's ``default``; a price is looked up:

1. the provider's price for the destination country;
2. else the provider's ``default`` (also for a destination whose country is not known);
3. else the table's ``fallback`` (a provider the table does not list).

Pure: no I/O besides :func:`load_price_table` reading the file it is given.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from schemas.fields import Channel
from verifiers.store import VerifierError

MICROS: Final = 1_000_000
MAX_MICROS: Final = 2**53 - 1
PRICED_CHANNELS: Final = (Channel.SMS, Channel.VOICE)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PriceTableError(VerifierError, ValueError):
    """A price table or a money amount that cannot be used; says where and what is wrong."""


def parse_money(value: object, where: str) -> int:
    """``value`` (a decimal string like ``"0.0075"``, or a whole number) in micros."""
    if isinstance(value, bool) or isinstance(value, float):
        raise PriceTableError(
            f'{where}: write amounts as decimal strings, e.g. "0.0075" (a float is rounded '
            f"already), found {value!r}"
        )
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise PriceTableError(
                f'{where}: expected a decimal amount like "0.0075", found {value[:32]!r}'
            ) from None
    else:
        raise PriceTableError(f"{where}: expected a decimal string, found {type(value).__name__}")
    if not amount.is_finite() or amount < 0:
        raise PriceTableError(f"{where}: expected an amount >= 0, found {value!r}")
    micros = amount * MICROS
    if micros != micros.to_integral_value():
        raise PriceTableError(f"{where}: at most 6 decimal places (micros), found {value!r}")
    if micros > MAX_MICROS:
        raise PriceTableError(f"{where}: amount too large, found {value!r}")
    return int(micros)


def format_money(micros: int, currency: str | None = None) -> str:
    """``7500`` as ``"0.0075"`` (with ``currency``: ``"0.0075 EUR"``); exact."""
    whole, _, fraction = format(Decimal(micros).scaleb(-6).normalize(), "f").partition(".")
    text = f"{whole}.{fraction.ljust(2, '0')}"
    return f"{text} {currency}" if currency else text


@dataclass(frozen=True)
class Price:
    """One send's price, and which row of the table gave it (for the docs and tests)."""

    micros: int
    currency: str
    source: str
    """``country``, ``default`` or ``fallback``."""


@dataclass(frozen=True)
class ProviderPrices:
    """One provider's prices on one channel."""

    default: int | None = None
    countries: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PriceTable:
    """Prices per channel, provider and country, in one currency (see the module docstring)."""

    currency: str
    fallback: int
    """Micros for a send by a provider the table does not list: keep it high, so an
    unpriced provider never looks cheap."""
    channels: Mapping[Channel, Mapping[str, ProviderPrices]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise PriceTableError(f"currency: expected ISO 4217 like EUR, found {self.currency!r}")

    def price(self, channel: Channel, provider: str, country: str | None) -> Price:
        """The price of one send by ``provider`` on ``channel`` to ``country`` (None: not known)."""
        prices = self.channels.get(channel, {}).get(provider)
        if prices is None:
            return Price(self.fallback, self.currency, "fallback")
        if country is not None and country in prices.countries:
            return Price(prices.countries[country], self.currency, "country")
        if prices.default is not None:
            return Price(prices.default, self.currency, "default")
        return Price(self.fallback, self.currency, "fallback")

    def most(self, channel: Channel, providers: tuple[str, ...], country: str | None) -> Price:
        """The dearest price among ``providers`` (the failover may end at any of them): what a
        send is charged against a cap before it is known who delivers it."""
        if not providers:
            return Price(self.fallback, self.currency, "fallback")
        return max((self.price(channel, p, country) for p in providers), key=lambda p: p.micros)


def price_table_from(document: Mapping[str, Any]) -> PriceTable:
    """The table a parsed TOML or JSON document describes (:class:`PriceTableError`)."""
    known = {"currency", "fallback", "caps", *(c.value for c in PRICED_CHANNELS)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise PriceTableError(f"unknown top-level keys {unknown}: expected {sorted(known)}")
    currency = document.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise PriceTableError(f'currency: expected ISO 4217 like "EUR", found {currency!r}')
    if "fallback" not in document:
        raise PriceTableError("fallback: required (the price of a send no row prices)")
    channels: dict[Channel, dict[str, ProviderPrices]] = {}
    for channel in PRICED_CHANNELS:
        section = document.get(channel.value, {})
        if not isinstance(section, Mapping):
            raise PriceTableError(f"[{channel}]: expected a table of providers")
        channels[channel] = {
            name: _provider(rows, f"[{channel}.{name}]") for name, rows in section.items()
        }
    return PriceTable(currency, parse_money(document["fallback"], "fallback"), channels)


def _provider(rows: object, where: str) -> ProviderPrices:
    if not isinstance(rows, Mapping):
        raise PriceTableError(f'{where}: expected a table of country = "price"')
    default = None
    countries: dict[str, int] = {}
    for key, value in rows.items():
        if key == "default":
            default = parse_money(value, f"{where} default")
        elif isinstance(key, str) and _COUNTRY.match(key):
            countries[key] = parse_money(value, f"{where} {key}")
        else:
            raise PriceTableError(
                f'{where}: expected "default" or an ISO 3166-1 alpha-2 code like DE, '
                f"found {str(key)[:16]!r}"
            )
    return ProviderPrices(default, countries)


def read_document(path: Path) -> dict[str, Any]:
    """A ``.toml`` or ``.json`` settings file as a mapping (:class:`PriceTableError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PriceTableError(f"{path}: cannot read ({error.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(text)
        else:
            document = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise PriceTableError(f"{path}: not valid {path.suffix.lstrip('.')}: {error}") from None
    if not isinstance(document, dict):
        raise PriceTableError(f"{path}: expected a table at the top")
    return document


def load_price_table(path: Path) -> PriceTable:
    return price_table_from(read_document(path))

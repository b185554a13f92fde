"""SMS cost and caps: the price table, the daily caps per tenant and country, receipts.

Pure logic first (prices, money, caps with time as a parameter), then as an attacker
through the real ceremonies on a real SQLite store: a pumping burst to premium-rate
countries from many fresh subjects, many tenants, a country that is not what the caller
says or not known at all, a cap reached exactly, the day turning at UTC midnight.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from schemas import Event
from schemas.fields import Channel, Factor
from schemas.payloads import NOT_EVALUATED_REASONS, ReceiptStatus
from tests.unit.verifiers.conftest import NOW
from tests.unit.verifiers.test_otp import Broken, Handset, _events
from verifiers import otp
from verifiers.delivery import DeliveryFailed, FailoverDelivery
from verifiers.pricing import (
    PriceTableError,
    format_money,
    load_price_table,
    parse_money,
    price_table_from,
)
from verifiers.receipts import receipt_status, record_receipt
from verifiers.sendcaps import (
    UNKNOWN_COUNTRY,
    CountryCaps,
    DailyCap,
    DaySpent,
    SendCharges,
    charge,
    load_send_charges,
    next_day,
    refuse_over_cap,
    send_charges_from,
    spent,
    utc_day,
)
from verifiers.store import Request, VerifierStore

ROOT = Path(__file__).resolve().parents[3]
SIMULATED = ROOT / "factorstream" / "simulator" / "sms_costs.toml"
NIGERIA = "+234802123{:04d}"
GERMANY = "+4915123{:06d}"
NON_GEOGRAPHIC = "+8823421234"  # a mobile number with no country (global network +882)
RequestAt = Callable[..., Request]


def _docs_example() -> str:
    text = (ROOT / "docs" / "sms-cost.md").read_text()
    match = re.search(r"```toml\n(.*?)```", text, re.S)
    assert match is not None
    return match.group(1)


# -- money and prices (pure) -------------------------------------------------------------


def test_the_documented_example_and_the_simulated_table_load() -> None:
    import tomllib

    charges = send_charges_from(tomllib.loads(_docs_example()))
    assert charges.prices.price(Channel.SMS, "gateway-a", "NG").micros == 320_000
    assert charges.caps.cap_for("NG") == DailyCap(20, 5_000_000)
    assert charges.caps.cap_for(None) == DailyCap(10, None)
    simulated = load_send_charges(SIMULATED)
    assert simulated.prices.currency == "EUR"
    assert simulated.prices.price(Channel.SMS, "simsms-primary", "RU").micros == 480_000
    assert simulated.caps.cap_for("RU") == DailyCap(30, 15_000_000)


def test_lookup_order_country_then_provider_default_then_fallback() -> None:
    table = price_table_from(
        {
            "currency": "USD",
            "fallback": "1",
            "sms": {"a": {"default": "0.05", "DE": "0.075"}, "b": {"NG": "0.3"}},
        }
    )
    assert table.price(Channel.SMS, "a", "DE").micros == 75_000
    assert table.price(Channel.SMS, "a", "FR").source == "default"
    assert table.price(Channel.SMS, "a", None).micros == 50_000  # country not known
    assert table.price(Channel.SMS, "b", "DE").source == "fallback"  # b has no default
    assert table.price(Channel.SMS, "nobody", "DE").micros == 1_000_000
    assert table.price(Channel.VOICE, "a", "DE").source == "fallback"  # no voice prices
    assert table.most(Channel.SMS, ("a", "b"), "NG").micros == 300_000


def test_micros_add_exactly_where_floats_drift() -> None:
    micros = parse_money("0.0075", "price")
    assert micros == 7_500
    assert sum([micros] * 1_000_000) == 7_500 * 1_000_000  # 7500.00 exactly
    assert sum([0.0075] * 1_000_000) != 7500.0  # what a float column would have said
    assert format_money(micros * 3, "EUR") == "0.0225 EUR"
    assert format_money(5_000_000) == "5.00"
    assert Decimal(format_money(123_456_789)) * 1_000_000 == 123_456_789


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0.0075, "decimal strings"),
        ("0.00000001", "6 decimal places"),
        ("-0.01", ">= 0"),
        ("NaN", ">= 0"),
        ("cheap", "decimal amount"),
        (True, "decimal strings"),
        ("1e20", "too large"),
    ],
)
def test_bad_amounts_say_what_is_wrong(value: object, problem: str) -> None:
    with pytest.raises(PriceTableError, match=re.escape(problem)):
        parse_money(value, "sms.a DE")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"fallback": "1"}, "currency"),
        ({"currency": "euro", "fallback": "1"}, "currency"),
        ({"currency": "EUR"}, "fallback: required"),
        ({"currency": "EUR", "fallback": "1", "sms": {"a": {"Germany": "1"}}}, "alpha-2"),
        ({"currency": "EUR", "fallback": "1", "mms": {}}, "unknown top-level keys"),
        ({"currency": "EUR", "fallback": "1", "caps": {"daily": {}}}, "unknown keys"),
        ({"currency": "EUR", "fallback": "1", "caps": {"default": {"sends": -1}}}, ">= 0"),
        ({"currency": "EUR", "fallback": "1", "caps": {"countries": {"ng": {}}}}, "alpha-2"),
    ],
)
def test_bad_tables_say_what_is_wrong(document: dict[str, object], problem: str) -> None:
    with pytest.raises(PriceTableError, match=re.escape(problem)):
        send_charges_from(document)


def test_a_bad_file_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "prices.toml"
    broken.write_text('currency = "EUR"\nfallback = 0.5\n')
    with pytest.raises(PriceTableError, match="prices.toml|decimal strings"):
        load_price_table(broken)
    missing = tmp_path / "none.json"
    with pytest.raises(PriceTableError, match="cannot read"):
        load_price_table(missing)


# -- caps (pure; time is a parameter) ----------------------------------------------------


def test_a_cap_reached_exactly_is_not_passed() -> None:
    cap = DailyCap(sends=3, spend=900_000)
    assert refuse_over_cap(DaySpent(2, 600_000), cost=300_000, cap=cap, now=NOW) is None
    refused = refuse_over_cap(DaySpent(3, 600_000), cost=1, cap=cap, now=NOW)
    assert refused is not None and refused.limit == "sends" and refused.reason == "country_cap"
    spend = refuse_over_cap(DaySpent(1, 600_001), cost=300_000, cap=cap, now=NOW)
    assert spend is not None and spend.limit == "spend"
    assert refuse_over_cap(DaySpent(10**9, 10**15), cost=1, cap=DailyCap(), now=NOW) is None
    assert refuse_over_cap(DaySpent(), cost=0, cap=DailyCap(sends=0), now=NOW) is not None


def test_the_day_is_the_utc_day_whatever_the_offset() -> None:
    new_york = timezone(timedelta(hours=-5))
    late_evening = datetime(2026, 11, 27, 20, 0, tzinfo=new_york)  # 01:00 UTC on the 28th
    assert utc_day(late_evening).isoformat() == "2026-11-28"
    assert next_day(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_day(datetime(2026, 11, 27))  # noqa: DTZ001 - the misuse under test


def test_unknown_countries_fall_under_their_own_cap() -> None:
    caps = CountryCaps(default=DailyCap(100), unknown=DailyCap(2), countries={"NG": DailyCap(5)})
    assert caps.cap_for(None).sends == 2
    assert caps.cap_for("NG").sends == 5
    assert caps.cap_for("ZZ").sends == 100  # no code the caller writes reaches "unknown"'s room


# -- through the ceremonies (a real SQLite store) ----------------------------------------

CHARGES = SendCharges(
    price_table_from(
        {
            "currency": "EUR",
            "fallback": "0.50",
            "sms": {
                "primary": {"default": "0.08", "NG": "0.32", "DE": "0.075"},
                "backup": {"default": "0.09", "NG": "0.35"},
            },
        }
    ),
    CountryCaps(
        default=DailyCap(sends=1000),
        unknown=DailyCap(sends=1),
        countries={"NG": DailyCap(sends=20, spend=2_000_000)},
    ),
)


def _send(
    store: VerifierStore,
    request: Request,
    delivery: FailoverDelivery,
    number: str,
    region: str | None = None,
) -> otp.SendResult:
    enrollment = otp.begin_enrollment(
        store, request, factor=Factor.SMS, destination=number, region=region
    )
    return otp.send_code(
        store,
        request,
        factor=Factor.SMS,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
        charges=CHARGES,
    )


def _burst(
    store: VerifierStore,
    request_at: RequestAt,
    delivery: FailoverDelivery,
    count: int,
    *,
    tenant: str = "acme",
    start: datetime = NOW,
    number: str = NIGERIA,
) -> list[otp.SendResult]:
    """``count`` fresh subjects each asking for one code, a second apart (a pumping bot)."""
    return [
        _send(
            store,
            request_at(start + timedelta(seconds=i), tenant=tenant, subject=f"bot-{tenant}-{i}"),
            delivery,
            number.format(i),
        )
        for i in range(count)
    ]


def _sent_cost(events: list[Event], tenant: str = "acme") -> int:
    return sum(
        e.data.cost_micros or 0
        for e in events
        if e.type == "mfa.challenge.sent" and e.tenant == tenant
    )


def test_a_pumping_burst_is_refused_before_it_costs_more_than_the_cap(
    store: VerifierStore, request_at: RequestAt
) -> None:
    handset = Handset(name="primary")
    delivery = FailoverDelivery([handset])
    results = _burst(store, request_at, delivery, 40)
    sent = [r for r in results if r.sent]
    # 2.00 EUR at 0.32 a message: 6 messages (1.92), the seventh would pass the cap
    assert len(sent) == 6 and len(handset.received) == 6
    assert {r.reason for r in results if not r.sent} == {"country_cap"}
    events = _events(store)
    assert _sent_cost(events) == 6 * 320_000 <= 2_000_000
    refused = [e for e in events if getattr(e.data, "reason", None) == "country_cap"]
    assert len(refused) == 34
    first = refused[0].data
    assert (first.destination_country, first.cost_micros, first.currency) == ("NG", 320_000, "EUR")
    assert "country_cap" in NOT_EVALUATED_REASONS
    # no subject was locked by the refusals, and nothing was issued for them
    assert all(not store.lockout(request_at(subject=f"bot-acme-{i}")).locked for i in range(40))
    issued = [e for e in events if e.type == "mfa.challenge.issued"]
    assert len(issued) == 6
    with store.engine.connect() as connection:
        day = spent(connection, tenant="acme", country="NG", day=NOW)
    assert day == DaySpent(6, 1_920_000)


def test_refusals_by_the_cap_lock_no_one(store: VerifierStore, request_at: RequestAt) -> None:
    """Anyone could run a tenant's cap dry; its refusals must not count as failed guesses,
    or asking for codes would lock people out."""
    handset = Handset(name="primary")
    delivery = FailoverDelivery([handset])
    early = NOW - timedelta(hours=1)
    request = request_at(early, subject="victim")
    enrolled = _send(store, request, delivery, NIGERIA.format(77))  # 1 of NG's 6 today
    enrollment_id = _events(store)[0].data.enrollment_id
    verdict = otp.confirm_enrollment(
        store, request, enrollment_id=enrollment_id, code=handset.code()
    )
    assert enrolled.sent and verdict.accepted
    _burst(store, request_at, delivery, 5)  # the day's NG spend is used up
    for attempt in range(12):  # far more than any tier's failures before a lock
        result = otp.send_code(
            store,
            request_at(NOW + timedelta(minutes=attempt), subject="victim"),
            factor=Factor.SMS,
            delivery=delivery,
            charges=CHARGES,
        )
        assert (result.sent, result.reason) == (False, "country_cap")
        assert result.events[0].type == "mfa.verification.failed"
    assert not store.lockout(request_at(NOW + timedelta(minutes=12), subject="victim")).locked


def test_every_send_carries_the_price_of_the_provider_that_took_it(
    store: VerifierStore, request_at: RequestAt
) -> None:
    handset = Handset(name="backup")
    delivery = FailoverDelivery([Broken("primary", DeliveryFailed("timeout")), handset])
    result = _send(store, request_at(), delivery, GERMANY.format(1))
    assert result.sent and result.provider == "backup"
    sent = [e for e in _events(store) if e.type == "mfa.challenge.sent"]
    assert [(e.data.provider, e.data.cost_micros, e.data.currency) for e in sent] == [
        ("backup", 90_000, "EUR")  # backup's default: it has no DE price
    ]
    with store.engine.connect() as connection:
        # charged at the dearest (0.09), settled at what was paid (0.09)
        assert spent(connection, tenant="acme", country="DE", day=NOW) == DaySpent(1, 90_000)


def test_a_send_no_provider_took_is_settled_to_nothing(
    store: VerifierStore, request_at: RequestAt
) -> None:
    delivery = FailoverDelivery([Broken("primary", DeliveryFailed("rejected"))])
    result = _send(store, request_at(), delivery, GERMANY.format(2))
    assert not result.sent and result.reason == "delivery_failed"
    with store.engine.connect() as connection:
        assert spent(connection, tenant="acme", country="DE", day=NOW) == DaySpent(1, 0)


def test_tenants_have_caps_of_their_own(store: VerifierStore, request_at: RequestAt) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    for tenant in ("acme", "globex", "initech"):
        results = _burst(store, request_at, delivery, 8, tenant=tenant)
        assert sum(r.sent for r in results) == 6, tenant
    events = _events(store)
    assert {t: _sent_cost(events, t) for t in ("acme", "globex", "initech")} == dict.fromkeys(
        ("acme", "globex", "initech"), 1_920_000
    )


def test_the_country_is_the_numbers_own_not_the_callers_claim(
    store: VerifierStore, request_at: RequestAt
) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    _burst(store, request_at, delivery, 6)  # NG's spend cap is full (1.92 of 2.00)
    # a Nigerian number written with a German region hint is still Nigerian
    sneaky = _send(store, request_at(subject="sneaky"), delivery, "+2348021239999", region="DE")
    assert not sneaky.sent and sneaky.reason == "country_cap"
    plain = _send(store, request_at(subject="plain"), delivery, "00 234 802 123 9998", region="DE")
    assert not plain.sent and plain.reason == "country_cap"


def test_numbers_without_a_country_share_the_unknown_cap(
    store: VerifierStore, request_at: RequestAt
) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    first = _send(store, request_at(subject="n1"), delivery, NON_GEOGRAPHIC)
    second = _send(store, request_at(subject="n2"), delivery, NON_GEOGRAPHIC[:-1] + "5")
    assert first.sent and (second.sent, second.reason) == (False, "country_cap")
    with store.engine.connect() as connection:
        assert spent(connection, tenant="acme", country=None, day=NOW).sends == 1
        keys = connection.exec_driver_sql("SELECT DISTINCT country FROM send_counts").scalars()
        assert set(keys) == {UNKNOWN_COUNTRY}


def test_the_cap_starts_again_at_utc_midnight(store: VerifierStore, request_at: RequestAt) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    evening = datetime(2026, 11, 27, 23, 59, 30, tzinfo=UTC)
    results = _burst(store, request_at, delivery, 7, start=evening - timedelta(seconds=6))
    refused = results[-1]
    assert (refused.sent, refused.reason) == (False, "country_cap")
    assert refused.retry_after == 30  # from 23:59:30 to 00:00:00 UTC
    just_before = _send(
        store,
        request_at(evening + timedelta(seconds=29, microseconds=999_999), subject="b1"),
        delivery,
        NIGERIA.format(101),
    )
    assert not just_before.sent
    midnight = _send(
        store,
        request_at(datetime(2026, 11, 28, tzinfo=UTC), subject="m1"),
        delivery,
        NIGERIA.format(102),
    )
    assert midnight.sent


def test_email_is_neither_priced_nor_capped(store: VerifierStore, request_at: RequestAt) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    for i in range(3):
        request = request_at(subject=f"mail-{i}")
        enrollment = otp.begin_enrollment(
            store, request, factor=Factor.EMAIL, destination=f"p{i}@example.com"
        )
        result = otp.send_code(
            store,
            request,
            factor=Factor.EMAIL,
            delivery=delivery,
            enrollment_id=enrollment.enrollment_id,
            charges=SendCharges(CHARGES.prices, CountryCaps(unknown=DailyCap(sends=0))),
        )
        assert result.sent
    sent = [e for e in _events(store) if e.type == "mfa.challenge.sent"]
    assert all(e.data.cost_micros is None for e in sent)


def test_the_counter_row_is_charged_inside_the_callers_transaction(
    store: VerifierStore,
) -> None:
    caps = CountryCaps(countries={"NG": DailyCap(sends=1)})
    with store.engine.connect() as connection:
        with connection.begin() as transaction:
            assert charge(connection, tenant="t", country="NG", cost=5, caps=caps, now=NOW) is None
            transaction.rollback()  # the send's step failed: nothing is charged
        with connection.begin():
            assert charge(connection, tenant="t", country="NG", cost=5, caps=caps, now=NOW) is None
            assert charge(connection, tenant="t", country="NG", cost=5, caps=caps, now=NOW)


# -- delivery receipts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("DELIVRD", ReceiptStatus.DELIVERED),
        ("delivered", ReceiptStatus.DELIVERED),
        ("UNDELIV", ReceiptStatus.UNDELIVERED),
        ("failed", ReceiptStatus.UNDELIVERED),
        ("expired", ReceiptStatus.EXPIRED),
        ("REJECTD", ReceiptStatus.REJECTED),
        ("queued", None),
        ("sent", None),
    ],
)
def test_provider_words(word: str, status: ReceiptStatus | None) -> None:
    assert receipt_status(word) == status


def test_receipts_are_their_own_events_once_and_only_for_the_tenants_messages(
    store: VerifierStore, request_at: RequestAt
) -> None:
    handset = Handset(name="primary")
    delivery = FailoverDelivery([handset])
    result = _send(store, request_at(), delivery, GERMANY.format(3))
    assert result.sent
    later = NOW + timedelta(seconds=5)

    def report(status: str, tenant: str = "acme", message: str = "m-1") -> object:
        return record_receipt(
            store,
            tenant=tenant,
            provider="primary",
            provider_message_id=message,
            status=status,
            now=later,
        )

    assert report("queued").reason == "not_final"  # type: ignore[attr-defined]
    assert report("gibberish").reason == "unknown_status"  # type: ignore[attr-defined]
    assert report("DELIVRD", tenant="globex").reason == "unknown_message"  # type: ignore[attr-defined]
    assert report("DELIVRD", message="m-9").reason == "unknown_message"  # type: ignore[attr-defined]
    first = report("DELIVRD")
    assert first.recorded  # type: ignore[attr-defined]
    assert report("DELIVRD").reason == "duplicate"  # type: ignore[attr-defined]
    receipts = [e for e in _events(store) if e.type == "mfa.challenge.delivery_reported"]
    assert len(receipts) == 1
    receipt = receipts[0]
    assert receipt.time == later and receipt.correlationid == "login-1"
    assert receipt.subject == "u-1001"
    data = receipt.data
    assert (data.delivery_status, data.provider_status, data.destination_country) == (
        ReceiptStatus.DELIVERED,
        "DELIVRD",
        "DE",
    )
    assert data.challenge_id == result.challenge_id


def test_a_send_without_charges_is_as_before(store: VerifierStore, request_at: RequestAt) -> None:
    delivery = FailoverDelivery([Handset(name="primary")])
    request = request_at()
    enrollment = otp.begin_enrollment(
        store, request, factor=Factor.SMS, destination=NIGERIA.format(1)
    )
    result = otp.send_code(
        store, request, factor=Factor.SMS, delivery=delivery, enrollment_id=enrollment.enrollment_id
    )
    assert result.sent
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM send_counts")).scalar() == 0


def test_a_voice_call_is_priced_and_shares_the_countrys_cap(
    store: VerifierStore, request_at: RequestAt
) -> None:
    handset = Handset(name="primary")
    delivery = FailoverDelivery([handset])
    _burst(store, request_at, delivery, 5)  # 1.60 of NG's 2.00 spent on SMS
    request = request_at(subject="caller")
    enrollment = otp.begin_enrollment(
        store, request, factor=Factor.VOICE, destination=NIGERIA.format(88)
    )
    call = otp.send_code(
        store,
        request,
        factor=Factor.VOICE,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
        charges=CHARGES,
    )
    # no voice prices in the table: the fallback (0.50) would take NG past 2.00
    assert (call.sent, call.reason) == (False, "country_cap")
    assert call.events[0].data.cost_micros == 500_000
    german = request_at(subject="caller-de")
    enrollment = otp.begin_enrollment(
        store, german, factor=Factor.VOICE, destination="+49 30 1234567"
    )
    call = otp.send_code(
        store,
        german,
        factor=Factor.VOICE,
        delivery=delivery,
        enrollment_id=enrollment.enrollment_id,
        charges=CHARGES,
    )
    assert call.sent and handset.received[-1].channel is Channel.VOICE
    sent = [e for e in _events(store) if e.type == "mfa.challenge.sent"]
    assert (sent[-1].data.channel, sent[-1].data.cost_micros) == (Channel.VOICE, 500_000)

"""The SMS cost and delivery queries on a small hand-made lake (answers worked out below),
as written and compacted; and on a lake written before the cost columns existed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analytics import queries as q
from analytics.columns import SCHEMAS
from analytics.compaction import compact, refresh_seeds
from analytics.lake import SEED_DATE, LakeWriter, parquet_files, partition_link
from analytics.views import connect
from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Factor, RiskLevel
from tests.unit.analytics.golden import at, ev
from tests.unit.analytics.test_queries_golden import rows

D1, D2 = "2026-11-02", "2026-11-03"
DAY1, DAY2 = pd.Timestamp(D1), pd.Timestamp(D2)
ALL = q.Filters()


def sent(challenge: str, provider: str, country: str | None, micros: int | None) -> p.ChallengeSent:
    return p.ChallengeSent(
        factor=Factor.SMS,
        challenge_id=challenge,
        channel=Channel.SMS,
        provider=provider,
        destination_country=country,
        cost_micros=micros,
        currency="EUR" if micros is not None else None,
        application="shop",
    )


def receipt(
    challenge: str, provider: str, country: str, status: str
) -> p.ChallengeDeliveryReported:
    return p.ChallengeDeliveryReported(
        factor=Factor.SMS,
        challenge_id=challenge,
        channel=Channel.SMS,
        provider=provider,
        delivery_status=p.ReceiptStatus(status),
        destination_country=country,
        application="shop",
    )


def events() -> list[Event]:
    """acme: on D1 two DE sends by gw-a (0.075 each), one NG send by gw-b (0.32) at 23:59:59
    that is delivered after midnight (a receipt on D2); on D2 an sms_pumping detection for
    the hour from 03:00, three NG sends in it (0.32 each, paid: flagged), one at 04:00 (after
    the hour: not flagged), and two country_cap refusals (0.32 each: stopped). globex: one DE
    send on D2 by gw-a (0.08), undelivered; one unpriced send (no table) is left out."""
    out = [
        ev(sent("a1", "gw-a", "DE", 75_000), "u1", at(D1, "10:00:00"), "t1"),
        ev(receipt("a1", "gw-a", "DE", "delivered"), "u1", at(D1, "10:00:04"), "t1"),
        ev(sent("a2", "gw-a", "DE", 75_000), "u2", at(D1, "11:00:00"), "t2"),
        ev(sent("a3", "gw-b", "NG", 320_000), "u3", at(D1, "23:59:59"), "t3"),
        ev(receipt("a3", "gw-b", "NG", "delivered"), "u3", at(D2, "00:00:03"), "t3"),
        ev(
            p.RiskDetected(
                detection=p.Detection.SMS_PUMPING,
                severity=RiskLevel.HIGH,
                score=75,
                summary="pumping",
                evidence={"period_start": "2026-11-03T03:00:00+00:00", "period_seconds": 3600},
            ),
            "sms-pumping",
            at(D2, "03:00:00"),
            "pump",
        ),
        ev(sent("g1", "gw-a", "DE", 80_000), "x1", at(D2, "09:00:00"), "g", tenant="globex"),
        ev(receipt("g1", "gw-a", "DE", "undelivered"), "x1", at(D2, "09:00:09"), "g", "globex"),
        ev(sent("g2", "gw-a", "DE", None), "x2", at(D2, "09:30:00"), "g2", tenant="globex"),
    ]
    for i in range(3):
        when = at(D2, "03:10:00") + timedelta(seconds=i)
        out.append(ev(sent(f"p{i}", "gw-b", "NG", 320_000), f"bot{i}", when, f"p{i}"))
    out.append(ev(sent("p9", "gw-b", "NG", 320_000), "bot9", at(D2, "04:00:00"), "p9"))
    for i in range(2):
        refused = p.VerificationFailed(
            factor=Factor.SMS,
            reason="country_cap",
            destination_country="NG",
            cost_micros=320_000,
            currency="EUR",
            application="shop",
        )
        out.append(ev(refused, f"bot-r{i}", at(D2, "03:20:00"), f"r{i}"))
    return out


@pytest.fixture(scope="module", params=["as-written", "compacted"])
def con(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    lake = tmp_path_factory.mktemp("sms") / "lake"
    writer = LakeWriter(lake)
    batch = events()
    writer.write_events(batch[:7])
    writer.write_events(batch[7:])
    if request.param == "compacted":
        assert compact(lake, min_files=2)
    connection = connect(lake)
    yield connection
    connection.close()


def test_spend_per_day_tenant_country_provider(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.sms_spend(con, ALL)) == [
        (DAY1, "acme", "DE", "gw-a", "EUR", 2, 150_000),
        (DAY1, "acme", "NG", "gw-b", "EUR", 1, 320_000),  # 23:59:59 counts on its own day
        (DAY2, "acme", "NG", "gw-b", "EUR", 4, 1_280_000),
        (DAY2, "globex", "DE", "gw-a", "EUR", 1, 80_000),  # the unpriced send left out
    ]
    assert rows(q.sms_spend(con, q.Filters(tenant="globex"))) == [
        (DAY2, "globex", "DE", "gw-a", "EUR", 1, 80_000)
    ]


def test_delivery_success_counts_receipts_not_acceptances(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.sms_delivery_health(con, ALL)) == [
        ("gw-b", "NG", 5, 0, 1, 1, 1.0),
        ("gw-a", "DE", 4, 0, 2, 1, 0.5),
    ]


def test_pumping_spend_flagged_and_stopped(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.sms_pumping_spend(con, ALL)) == [
        (DAY2, "acme", "EUR", "flagged", 3, 960_000),
        (DAY2, "acme", "EUR", "refused", 2, 640_000),
    ]
    assert rows(q.sms_pumping_spend(con, q.Filters(tenant="globex"))) == []


def test_a_lake_without_any_priced_send_answers_empty(tmp_path: Path) -> None:
    LakeWriter(tmp_path / "lake").write_events(
        [ev(sent("z", "gw-a", "DE", None), "u", at(D1, "10:00:00"), "z")]
    )
    with connect(tmp_path / "lake") as connection:
        assert q.sms_spend(connection, ALL).empty
        assert q.sms_pumping_spend(connection, ALL).empty


def test_a_lake_made_before_the_cost_columns_gains_them_at_compaction(tmp_path: Path) -> None:
    """An upgraded lake: its seed files predate the columns and no file has them yet."""
    lake = tmp_path / "lake"
    LakeWriter(lake)
    seed = partition_link(lake, "challenges", SEED_DATE)
    (path,) = parquet_files(seed.resolve())
    old = SCHEMAS["challenges"]
    for name in ("cost_micros", "currency", "delivery_status"):
        old = old.remove(old.get_field_index(name))
    pq.write_table(old.empty_table(), path)
    with connect(lake) as connection:
        with pytest.raises(duckdb.BinderException):
            q.sms_spend(connection, ALL)
    assert refresh_seeds(lake) == ["challenges"]
    assert refresh_seeds(lake) == []  # once
    with connect(lake) as connection:
        assert q.sms_spend(connection, ALL).empty
        assert q.sms_delivery_health(connection, ALL).empty
